"""Reads a CTranslate2 Whisper model directory (faster-whisper's format: model.bin, config.json,
tokenizer.json) into the float64 tensors of whisper_ref.py, under OpenAI's names.

model.bin, as CTranslate2's python/ctranslate2/specs/model_spec.py (ModelSpec._serialize) writes
it and src/models/model.cc reads it, little-endian:
  u32 binary version; (version >= 2) string spec name, u32 spec revision;
  u32 variable count, then per variable: string name, u8 rank, u32 dims[rank],
    version >= 4: u8 dtype id (types.h DataType: float32, int8, int16, int32, float16, bfloat16),
                  u32 payload bytes;
    older:        u8 item size, u32 element count;
    payload;
  (version >= 3) u32 alias count, then (string alias, string variable name) pairs.
A string is a u16 length that counts a trailing NUL, then the bytes and the NUL.
Quantized weights (int8, int16) carry `NAME_scale`: int8 per output row (scale = 127 / max |row|),
int16 one scalar; the float value is q / scale.

The Whisper spec (specs/whisper_spec.py, converters/transformers.py WhisperLoader) stores
self-attention as one fused linear_0 = [query; key; value] and linear_1 = out; cross-attention as
linear_0 = query, linear_1 = [key; value], linear_2 = out; the key's bias (Whisper has none) is
stored as zeros. decoder/projection aliases the token embedding.
"""
import json
import os
import re
import struct

import numpy as np

KINDS = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}
NUMPY = {"float32": "<f4", "int8": "<i1", "int16": "<i2", "int32": "<i4", "float16": "<f2",
         "bfloat16": "<u2"}  # bfloat16 kept as its bits
ITEM_SIZE_KINDS = {4: "float32", 2: "int16", 1: "int8"}  # binary version < 4: implied by size


def read_stored(path):
    """(spec name, spec revision, {name: (kind, array as stored)}, [(alias, target)])."""
    with open(path, "rb") as f:
        buf = f.read()
    off = 0

    def take(fmt):
        nonlocal off
        vals = struct.unpack_from("<" + fmt, buf, off)
        off += struct.calcsize("<" + fmt)
        return vals

    def string():
        nonlocal off
        (n,) = take("H")
        s = buf[off:off + n - 1].decode()
        off += n
        return s

    (version,) = take("I")
    assert 1 <= version <= 6, f"{path}: CTranslate2 binary version {version} is not 1-6"
    spec, revision = (string(), take("I")[0]) if version >= 2 else ("", 1)
    stored = {}
    (count,) = take("I")
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        shape = take(f"{rank}I")
        if version >= 4:
            type_id, nbytes = take("BI")
            kind = KINDS[type_id]
        else:
            item, n = take("BI")
            kind, nbytes = ITEM_SIZE_KINDS[item], n * item
        stored[name] = (kind, np.frombuffer(buf, NUMPY[kind], nbytes // int(NUMPY[kind][-1]),
                                            off).reshape(shape))
        off += nbytes
    aliases = []
    if version >= 3:
        (n_alias,) = take("I")
        aliases = [(string(), string()) for _ in range(n_alias)]
    assert off == len(buf), f"{path}: {len(buf) - off} bytes after the last record"
    return spec, revision, stored, aliases


def as_float64(kind, x):
    if kind == "bfloat16":
        return (x.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return x.astype(np.float64)


def read_model_bin(path):
    """(spec name, spec revision, {name: float64 array}) with aliases resolved and quantized
    weights divided by their scales."""
    spec, revision, stored, aliases = read_stored(path)
    raw = {name: as_float64(kind, x) for name, (kind, x) in stored.items()}
    for alias, target in aliases:
        raw[alias] = raw[target]
        if target + "_scale" in raw:
            raw[alias + "_scale"] = raw[target + "_scale"]
    out = {}
    for name, value in raw.items():
        if name.endswith("_scale"):
            continue
        scale = raw.get(name + "_scale")
        if scale is not None:
            # int8: one scale per output row (a convolution's rows are its output channels)
            value = value / (scale.reshape((-1,) + (1,) * (value.ndim - 1)) if scale.ndim
                             else scale)
        out[name] = value
    return spec, revision, out


def _scalar(v):
    return int(np.asarray(v).reshape(-1)[0])


def to_openai(ct2):
    """hparams and tensors named as whisper_ref.py (OpenAI's state dict) expects."""
    n_state = ct2["encoder/conv1/weight"].shape[0]
    n_enc, n_dec = (len({k.split("/")[1] for k in ct2 if re.match(side + r"/layer_\d+/", k)})
                    for side in ("encoder", "decoder"))
    emb = ct2["decoder/embeddings/weight"]
    enc_pos = ct2["encoder/position_encodings/encodings"]
    dec_pos = ct2["decoder/position_encodings/encodings"]
    hp = {"n_vocab": emb.shape[0], "n_audio_ctx": enc_pos.shape[0],
          "n_audio_state": n_state, "n_audio_head": _scalar(ct2["encoder/num_heads"]),
          "n_audio_layer": n_enc, "n_text_ctx": dec_pos.shape[0], "n_text_state": n_state,
          "n_text_head": _scalar(ct2["decoder/num_heads"]),
          "n_text_layer": n_dec, "n_mels": ct2["encoder/conv1/weight"].shape[1]}
    assert np.array_equal(ct2.get("decoder/projection/weight", emb), emb), "untied projection"
    t = {"decoder.token_embedding.weight": emb, "decoder.positional_embedding": dec_pos,
         "encoder.positional_embedding": enc_pos}
    for c in ("conv1", "conv2"):
        t[f"encoder.{c}.weight"] = ct2[f"encoder/{c}/weight"]
        t[f"encoder.{c}.bias"] = ct2[f"encoder/{c}/bias"]

    def norm(dst, src):
        t[dst + ".weight"], t[dst + ".bias"] = ct2[src + "/gamma"], ct2[src + "/beta"]

    def linear(dst, src, rows=slice(None), bias=True):
        t[dst + ".weight"] = ct2[src + "/weight"][rows]
        if bias:
            t[dst + ".bias"] = ct2[src + "/bias"][rows]

    def split_kv(dst, src, start):
        # Whisper's key projection has no bias; a key bias would only shift each query's scores
        # by a constant, which softmax ignores, so whisper_ref leaves it out.
        linear(dst + ".key", src, slice(start, start + n_state), bias=False)
        linear(dst + ".value", src, slice(start + n_state, start + 2 * n_state))

    for side, n in (("encoder", n_enc), ("decoder", n_dec)):
        for i in range(n):
            p, s = f"{side}.blocks.{i}", f"{side}/layer_{i}"
            norm(p + ".attn_ln", s + "/self_attention/layer_norm")
            linear(p + ".attn.query", s + "/self_attention/linear_0", slice(0, n_state))
            split_kv(p + ".attn", s + "/self_attention/linear_0", n_state)
            linear(p + ".attn.out", s + "/self_attention/linear_1")
            if side == "decoder":
                norm(p + ".cross_attn_ln", s + "/attention/layer_norm")
                linear(p + ".cross_attn.query", s + "/attention/linear_0")
                split_kv(p + ".cross_attn", s + "/attention/linear_1", 0)
                linear(p + ".cross_attn.out", s + "/attention/linear_2")
            norm(p + ".mlp_ln", s + "/ffn/layer_norm")
            linear(p + ".mlp.0", s + "/ffn/linear_0")
            linear(p + ".mlp.2", s + "/ffn/linear_1")
    norm("encoder.ln_post", "encoder/layer_norm")
    norm("decoder.ln", "decoder/layer_norm")
    return hp, t


def load(model_dir):
    """(hparams, OpenAI-named float64 tensors, config.json dict) of a CTranslate2 Whisper dir."""
    spec, _, ct2 = read_model_bin(os.path.join(model_dir, "model.bin"))
    assert spec == "WhisperSpec", f"{model_dir}: spec {spec!r} is not WhisperSpec"
    act = _scalar(ct2.get("decoder/activation", 3))
    assert act == 3, f"decoder activation {act} is not GELU (3)"
    assert _scalar(ct2.get("decoder/pre_norm", 1)) == 1, "post-norm decoder"
    assert _scalar(ct2.get("decoder/scale_embeddings", 0)) == 0, "scaled embeddings"
    hp, t = to_openai(ct2)
    config = {}
    path = os.path.join(model_dir, "config.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    return hp, t, config
