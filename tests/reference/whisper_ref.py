"""Float64 numpy reference of the whole Whisper model, written from OpenAI's description of it
(whisper/model.py: AudioEncoder, TextDecoder, ResidualAttentionBlock, MultiHeadAttention), not
from eight's C++ code:

  encoder: x = gelu(conv1(mel)); x = gelu(conv2(x)) (kernel 3, padding 1, conv2 stride 2);
           x = x.T + positional_embedding; pre-LayerNorm blocks x += attn(attn_ln(x)),
           x += mlp(mlp_ln(x)) with mlp = Linear(n, 4n), exact GELU, Linear(4n, n); ln_post
  decoder: x = token_embedding[tokens] + positional_embedding[:T]; blocks with causal
           self-attention, cross-attention over the encoder output and the MLP; ln;
           logits = x @ token_embedding.T
  attention: q and k each scaled by d_head ** -0.25, softmax over keys, key projection without
           bias; LayerNorm eps 1e-5.

Weights come from a whisper.cpp ggml file (header, mel filters, vocab, tensors), dequantized
with gguf-py's reference decoders for the block types.
"""
import math
import struct

import numpy as np

GGML_MAGIC = 0x67676D6C
HPARAM_NAMES = ["n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
                "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer", "n_mels", "ftype"]
# ggml tensor type ids of the types whisper.cpp files use
TYPE_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0"}
LN_EPS = 1e-5


def _dequantize(raw, type_id, shape):
    import gguf  # only needed for block types; imported lazily so F32/F16 work without it
    qt = gguf.GGMLQuantizationType[TYPE_NAMES[type_id]]
    block, nbytes = gguf.GGML_QUANT_SIZES[qt]
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    data = np.frombuffer(raw, dtype=np.uint8).reshape(rows, shape[-1] // block * nbytes)
    return gguf.quants.dequantize(data, qt).astype(np.float64).reshape(shape)


def read_ggml(path):
    """(hparams dict, mel filters [n_mel, n_fft], {name: float64 array in PyTorch order})."""
    with open(path, "rb") as f:
        buf = f.read()
    magic = struct.unpack_from("<I", buf, 0)[0]
    assert magic == GGML_MAGIC, f"{path}: magic {magic:#x} is not ggml"
    hp = dict(zip(HPARAM_NAMES, struct.unpack_from("<11i", buf, 4)))
    off = 48
    n_mel, n_fft = struct.unpack_from("<2i", buf, off)
    off += 8
    filters = np.frombuffer(buf, dtype="<f4", count=n_mel * n_fft, offset=off).reshape(n_mel, n_fft)
    off += 4 * n_mel * n_fft
    (n_tok,) = struct.unpack_from("<i", buf, off)
    off += 4
    for _ in range(n_tok):
        (n,) = struct.unpack_from("<i", buf, off)
        off += 4 + n
    tensors = {}
    while off < len(buf):
        n_dims, name_len, ttype = struct.unpack_from("<3i", buf, off)
        off += 12
        ne = struct.unpack_from(f"<{n_dims}i", buf, off)
        off += 4 * n_dims
        name = buf[off:off + name_len].decode()
        off += name_len
        shape = tuple(reversed(ne))
        count = int(np.prod(ne))
        if ttype == 0:
            arr = np.frombuffer(buf, dtype="<f4", count=count, offset=off).astype(np.float64)
            off += 4 * count
        elif ttype == 1:
            arr = np.frombuffer(buf, dtype="<f2", count=count, offset=off).astype(np.float64)
            off += 2 * count
        else:
            import gguf
            block, nbytes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[TYPE_NAMES[ttype]]]
            size = count // block * nbytes
            arr = _dequantize(buf[off:off + size], ttype, shape)
            off += size
        tensors[name] = arr.reshape(shape)
    return hp, filters, tensors


_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * w + b


def conv1d(x, w, b, stride):
    """x [C_in, L], w [C_out, C_in, 3], padding 1 → [C_out, L_out]."""
    xp = np.pad(x, ((0, 0), (1, 1)))
    l_out = (x.shape[1] + 2 - 3) // stride + 1
    y = np.zeros((w.shape[0], l_out))
    for k in range(3):
        y += w[:, :, k] @ xp[:, k:k + stride * (l_out - 1) + 1:stride]
    return y + b.reshape(-1, 1)


def key_value(t, p, xa):
    return xa @ t[p + ".key.weight"].T, xa @ t[p + ".value.weight"].T + t[p + ".value.bias"]


def attention(t, p, x, xa, n_head, causal, kv=None):
    """MultiHeadAttention.forward / qkv_attention: x [T, n] queries, xa [S, n] keys/values (or
    kv, their projections from key_value, when the caller keeps them across calls)."""
    q = x @ t[p + ".query.weight"].T + t[p + ".query.bias"]
    k, v = kv if kv is not None else key_value(t, p, xa)
    T, n = q.shape
    d = n // n_head
    scale = d ** -0.25
    q = q.reshape(T, n_head, d).transpose(1, 0, 2) * scale
    k = k.reshape(-1, n_head, d).transpose(1, 2, 0) * scale
    v = v.reshape(-1, n_head, d).transpose(1, 0, 2)
    qk = q @ k  # [H, T, S]
    if causal:
        qk = qk + np.triu(np.full((T, qk.shape[-1]), -np.inf), 1)
    qk = qk - qk.max(-1, keepdims=True)
    w = np.exp(qk)
    w /= w.sum(-1, keepdims=True)
    wv = (w @ v).transpose(1, 0, 2).reshape(T, n)
    return wv @ t[p + ".out.weight"].T + t[p + ".out.bias"]


def mlp(t, p, x):
    h = gelu(x @ t[p + ".mlp.0.weight"].T + t[p + ".mlp.0.bias"])
    return h @ t[p + ".mlp.2.weight"].T + t[p + ".mlp.2.bias"]


def encoder(hp, t, mel):
    """mel [n_mels, 2 * n_audio_ctx] → [n_audio_ctx, n_audio_state]."""
    x = gelu(conv1d(mel, t["encoder.conv1.weight"], t["encoder.conv1.bias"], 1))
    x = gelu(conv1d(x, t["encoder.conv2.weight"], t["encoder.conv2.bias"], 2))
    x = x.T + t["encoder.positional_embedding"]
    for i in range(hp["n_audio_layer"]):
        p = f"encoder.blocks.{i}"
        h = layer_norm(x, t[p + ".attn_ln.weight"], t[p + ".attn_ln.bias"])
        x = x + attention(t, p + ".attn", h, h, hp["n_audio_head"], False)
        x = x + mlp(t, p, layer_norm(x, t[p + ".mlp_ln.weight"], t[p + ".mlp_ln.bias"]))
    return layer_norm(x, t["encoder.ln_post.weight"], t["encoder.ln_post.bias"])


def cross_key_values(hp, t, xa):
    """Each decoder layer's cross-attention keys and values: computed once per audio window."""
    return [key_value(t, f"decoder.blocks.{i}.cross_attn", xa) for i in range(hp["n_text_layer"])]


def decoder(hp, t, tokens, xa, cross=None, last_only=False):
    """Logits [T, n_vocab] after each token (positions 0 .. T-1); only the last row with
    last_only. cross: cross_key_values(hp, t, xa), to skip recomputing them."""
    emb = t["decoder.token_embedding.weight"]
    x = emb[np.asarray(tokens)] + t["decoder.positional_embedding"][:len(tokens)]
    for i in range(hp["n_text_layer"]):
        p = f"decoder.blocks.{i}"
        h = layer_norm(x, t[p + ".attn_ln.weight"], t[p + ".attn_ln.bias"])
        x = x + attention(t, p + ".attn", h, h, hp["n_text_head"], True)
        h = layer_norm(x, t[p + ".cross_attn_ln.weight"], t[p + ".cross_attn_ln.bias"])
        x = x + attention(t, p + ".cross_attn", h, xa, hp["n_text_head"], False,
                          cross[i] if cross is not None else None)
        x = x + mlp(t, p, layer_norm(x, t[p + ".mlp_ln.weight"], t[p + ".mlp_ln.bias"]))
    x = layer_norm(x[-1:] if last_only else x, t["decoder.ln.weight"], t["decoder.ln.bias"])
    return x @ emb.T


def forward(path, mel, tokens):
    hp, _, t = read_ggml(path)
    return decoder(hp, t, tokens, encoder(hp, t, np.asarray(mel, dtype=np.float64)))


def nmse(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.sum((a - b) ** 2) / np.sum(b ** 2))
