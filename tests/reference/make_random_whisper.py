"""Random-weight Whisper models in whisper.cpp's ggml layout, for tests of any size, mel count,
vocabulary layout and weight type.

Layout (little-endian): u32 magic "ggml"; 11 x i32 hparams (n_vocab, n_audio_ctx, n_audio_state,
n_audio_head, n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype);
mel filters (i32 n_mel, i32 n_fft = 201, floats); vocab (i32 count, then i32 length + bytes);
tensors: i32 n_dims, i32 name length, i32 ggml type, ne (innermost first), name, data.
Which tensors get which type follows whisper.cpp's converter and quantizer: 2-D weight matrices
(linear layers and the token embedding) in the file's type, convolution kernels F16 (F32 in an
F32 file), positional embeddings, norms and biases F32, conv biases stored as [n_state, 1].

Usage: make_random_whisper.py OUT.bin [--n-state 64] [--n-head 2] ... [--ftype q8_0]
"""
import argparse
import struct
import sys
import os

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whisper_mel_ref  # noqa: E402

# whisper.cpp file ftype codes → (ggml tensor type id, gguf quant type name)
FTYPES = {"f32": (0, 0, None), "f16": (1, 1, None), "q4_0": (2, 2, "Q4_0"),
          "q4_1": (3, 3, "Q4_1"), "q5_0": (8, 6, "Q5_0"), "q5_1": (9, 7, "Q5_1"),
          "q8_0": (7, 8, "Q8_0")}


def _matrix_bytes(w, ftype):
    """w float32 [rows, cols] → (ggml type id, raw bytes) in the file's matrix type."""
    _, type_id, qname = FTYPES[ftype]
    if type_id == 0:
        return 0, w.astype("<f4").tobytes()
    if type_id == 1:
        return 1, w.astype("<f2").tobytes()
    import gguf
    q = gguf.quants.quantize(w.astype(np.float32), gguf.GGMLQuantizationType[qname])
    return type_id, q.tobytes()


def write_model(path, n_vocab=51865, n_audio_ctx=50, n_state=64, n_head=2, n_audio_layer=2,
                n_text_ctx=64, n_text_layer=2, n_mels=80, ftype="f16", seed=0):
    """Writes the model to `path`. The reference reads the file back, so it sees the weights
    exactly as stored (rounded or quantized)."""
    rng = np.random.default_rng(seed)
    out = open(path, "wb")  # written as it goes: a large-v3-shaped file is 3 GB
    file_ftype = FTYPES[ftype][0]
    out.write(struct.pack("<I", 0x67676D6C))
    out.write(struct.pack("<11i", n_vocab, n_audio_ctx, n_state, n_head, n_audio_layer, n_text_ctx,
                           n_state, n_head, n_text_layer, n_mels, file_ftype))
    filters = whisper_mel_ref.mel_filters(n_mels).astype("<f4")
    out.write(struct.pack("<2i", n_mels, filters.shape[1]) + filters.tobytes())
    vocab = [bytes([b]) for b in range(256)]
    out.write(struct.pack("<i", len(vocab)))
    for tok in vocab:
        out.write(struct.pack("<i", len(tok)) + tok)

    def tensor(name, shape, type_id, data):
        ne = list(reversed(shape))
        out.write(struct.pack("<3i", len(ne), len(name), type_id))
        out.write(struct.pack(f"<{len(ne)}i", *ne))
        out.write(name.encode())
        out.write(data)

    def f32(name, shape, scale, mean=0.0):
        tensor(name, shape, 0, (mean + scale * rng.standard_normal(shape)).astype("<f4").tobytes())

    def mat(name, rows, cols):
        w = rng.standard_normal((rows, cols)) / np.sqrt(cols)
        type_id, data = _matrix_bytes(w.astype(np.float32), ftype)
        tensor(name, [rows, cols], type_id, data)

    def conv(name, c_out, c_in):
        w = rng.standard_normal((c_out, c_in, 3)) / np.sqrt(3 * c_in)
        if ftype == "f32":
            tensor(name, [c_out, c_in, 3], 0, w.astype("<f4").tobytes())
        else:
            tensor(name, [c_out, c_in, 3], 1, w.astype("<f2").tobytes())

    def norm(p):
        f32(p + ".weight", [n_state], 0.1, 1.0)
        f32(p + ".bias", [n_state], 0.1)

    def linear(p, rows, cols, bias=True):
        mat(p + ".weight", rows, cols)
        if bias:
            f32(p + ".bias", [rows], 0.1)

    def block(p, cross):
        attns = ["attn", "cross_attn"] if cross else ["attn"]
        for a in attns:
            norm(f"{p}.{a}_ln")
            linear(f"{p}.{a}.query", n_state, n_state)
            linear(f"{p}.{a}.key", n_state, n_state, bias=False)
            linear(f"{p}.{a}.value", n_state, n_state)
            linear(f"{p}.{a}.out", n_state, n_state)
        norm(p + ".mlp_ln")
        linear(p + ".mlp.0", 4 * n_state, n_state)
        linear(p + ".mlp.2", n_state, 4 * n_state)

    f32("encoder.positional_embedding", [n_audio_ctx, n_state], 0.5)
    conv("encoder.conv1.weight", n_state, n_mels)
    f32("encoder.conv1.bias", [n_state, 1], 0.1)
    conv("encoder.conv2.weight", n_state, n_state)
    f32("encoder.conv2.bias", [n_state, 1], 0.1)
    for i in range(n_audio_layer):
        block(f"encoder.blocks.{i}", False)
    norm("encoder.ln_post")
    f32("decoder.positional_embedding", [n_text_ctx, n_state], 0.5)
    # Token embedding scaled so logits spread over a few units (a clear argmax).
    w = rng.standard_normal((n_vocab, n_state)) * (2.0 / np.sqrt(n_state))
    type_id, data = _matrix_bytes(w.astype(np.float32), ftype)
    tensor("decoder.token_embedding.weight", [n_vocab, n_state], type_id, data)
    for i in range(n_text_layer):
        block(f"decoder.blocks.{i}", True)
    norm("decoder.ln")
    out.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    for name, default in [("n-vocab", 51865), ("n-audio-ctx", 50), ("n-state", 64), ("n-head", 2),
                          ("n-audio-layer", 2), ("n-text-ctx", 64), ("n-text-layer", 2),
                          ("n-mels", 80), ("seed", 0)]:
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--ftype", default="f16", choices=sorted(FTYPES))
    a = ap.parse_args()
    write_model(a.out, a.n_vocab, a.n_audio_ctx, a.n_state, a.n_head, a.n_audio_layer,
                a.n_text_ctx, a.n_text_layer, a.n_mels, a.ftype, a.seed)


if __name__ == "__main__":
    main()
