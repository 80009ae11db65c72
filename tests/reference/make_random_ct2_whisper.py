"""Random-weight Whisper models as CTranslate2 (faster-whisper) directories, numpy only.

The directory holds model.bin, config.json and vocabulary.json or vocabulary.txt (optionally
preprocessor_config.json), laid out as CTranslate2's converter writes them (facts from
python/ctranslate2/specs/model_spec.py `_serialize` / `_quantize`, whisper_spec.py and the
transformers converter's WhisperLoader; no code taken):

model.bin, little-endian, no padding: u32 binary version (6); string spec name ("WhisperSpec");
u32 revision (3); u32 variable count; per variable, in name order: string name, u8 rank, rank x u32
dims, u8 type (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16), u32 byte count, data; then u32 alias
count and (alias, target) string pairs. A string is u16 (length + 1), the UTF-8 bytes and a NUL.

Quantization as CTranslate2 applies it to weights that have a "_scale" slot (linear layers, the
token embedding, the convolutions): int8 rows q = rint(w * s), s = 127 / max|row| (float32 per
row, convolutions flattened to rows); int16 q = rint(w * s), s = 2^10 / max|w| (one float32);
the other float variables become float16 (float16, int8_float16), bfloat16 (bfloat16,
int8_bfloat16) or stay float32.

write_dir() returns the weights as the directory stores them (rounded or quantized, then read
back as float64) under whisper.cpp's names, for tests/reference/whisper_ref.py.
"""
import json
import os
import struct

import numpy as np

TYPE_IDS = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4, "bfloat16": 5}
QUANTIZATIONS = ("float32", "float16", "bfloat16", "int8", "int8_float32", "int8_float16",
                 "int8_bfloat16", "int16")


def bytes_to_unicode():
    """GPT-2's byte → printable character table (byte-level BPE)."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def vocabulary(n_vocab):
    """Token strings by id: the 256 bytes, filler text tokens, Whisper's specials, timestamps."""
    multilingual = n_vocab >= 51865
    eot = 50257 if multilingual else 50256
    b2u = bytes_to_unicode()
    toks = [b2u[b] for b in range(256)]
    toks += [b2u[ord(" ")] + "w%d" % i for i in range(eot - 256)]
    n_lang = n_vocab - 1501 - 6 - (eot + 2)
    toks += ["<|endoftext|>", "<|startoftranscript|>"] + ["<|l%d|>" % i for i in range(n_lang)]
    toks += ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
             "<|nospeech|>", "<|notimestamps|>"]
    toks += ["<|%.2f|>" % (i * 0.02) for i in range(1501)]
    assert len(toks) == n_vocab, (len(toks), n_vocab)
    return toks, eot


def random_weights(rng, n_vocab, n_audio_ctx, n_state, n_audio_layer, n_text_ctx, n_text_layer,
                   n_mels):
    """float32 weights under whisper.cpp's (OpenAI's) names."""
    t = {}

    def f32(name, shape, scale, mean=0.0):
        t[name] = (mean + scale * rng.standard_normal(shape)).astype(np.float32)

    def block(p, cross):
        for a in (["attn", "cross_attn"] if cross else ["attn"]):
            f32(f"{p}.{a}_ln.weight", [n_state], 0.1, 1.0)
            f32(f"{p}.{a}_ln.bias", [n_state], 0.1)
            for x in ("query", "key", "value", "out"):
                f32(f"{p}.{a}.{x}.weight", [n_state, n_state], 1 / np.sqrt(n_state))
                if x != "key":
                    f32(f"{p}.{a}.{x}.bias", [n_state], 0.1)
        f32(p + ".mlp_ln.weight", [n_state], 0.1, 1.0)
        f32(p + ".mlp_ln.bias", [n_state], 0.1)
        f32(p + ".mlp.0.weight", [4 * n_state, n_state], 1 / np.sqrt(n_state))
        f32(p + ".mlp.0.bias", [4 * n_state], 0.1)
        f32(p + ".mlp.2.weight", [n_state, 4 * n_state], 1 / np.sqrt(4 * n_state))
        f32(p + ".mlp.2.bias", [n_state], 0.1)

    f32("encoder.conv1.weight", [n_state, n_mels, 3], 1 / np.sqrt(3 * n_mels))
    f32("encoder.conv1.bias", [n_state], 0.1)
    f32("encoder.conv2.weight", [n_state, n_state, 3], 1 / np.sqrt(3 * n_state))
    f32("encoder.conv2.bias", [n_state], 0.1)
    f32("encoder.positional_embedding", [n_audio_ctx, n_state], 0.5)
    for i in range(n_audio_layer):
        block(f"encoder.blocks.{i}", False)
    f32("encoder.ln_post.weight", [n_state], 0.1, 1.0)
    f32("encoder.ln_post.bias", [n_state], 0.1)
    f32("decoder.token_embedding.weight", [n_vocab, n_state], 2.0 / np.sqrt(n_state))
    f32("decoder.positional_embedding", [n_text_ctx, n_state], 0.5)
    for i in range(n_text_layer):
        block(f"decoder.blocks.{i}", True)
    f32("decoder.ln.weight", [n_state], 0.1, 1.0)
    f32("decoder.ln.bias", [n_state], 0.1)
    return t


def ct2_variables(t, n_state, n_audio_layer, n_text_layer, n_head):
    """CTranslate2's Whisper variables (float32) from whisper.cpp-named weights. Returns
    {name: array} and the names whose spec has a "_scale" slot (quantizable)."""
    v, quantizable = {}, set()
    zeros = np.zeros(n_state, np.float32)

    def linear(dst, srcs):
        v[dst + "/weight"] = np.concatenate([t[s + ".weight"] for s in srcs])
        v[dst + "/bias"] = np.concatenate([t.get(s + ".bias", zeros) for s in srcs])
        quantizable.add(dst + "/weight")

    def norm(dst, src):
        v[dst + "/gamma"], v[dst + "/beta"] = t[src + ".weight"], t[src + ".bias"]

    def layer(dst, src, cross):
        norm(dst + "/self_attention/layer_norm", src + ".attn_ln")
        linear(dst + "/self_attention/linear_0",
               [src + ".attn.query", src + ".attn.key", src + ".attn.value"])
        linear(dst + "/self_attention/linear_1", [src + ".attn.out"])
        if cross:
            norm(dst + "/attention/layer_norm", src + ".cross_attn_ln")
            linear(dst + "/attention/linear_0", [src + ".cross_attn.query"])
            linear(dst + "/attention/linear_1", [src + ".cross_attn.key", src + ".cross_attn.value"])
            linear(dst + "/attention/linear_2", [src + ".cross_attn.out"])
        norm(dst + "/ffn/layer_norm", src + ".mlp_ln")
        linear(dst + "/ffn/linear_0", [src + ".mlp.0"])
        linear(dst + "/ffn/linear_1", [src + ".mlp.2"])

    for c in ("conv1", "conv2"):
        v[f"encoder/{c}/weight"] = t[f"encoder.{c}.weight"]
        v[f"encoder/{c}/bias"] = t[f"encoder.{c}.bias"]
        quantizable.add(f"encoder/{c}/weight")
    v["encoder/position_encodings/encodings"] = t["encoder.positional_embedding"]
    for i in range(n_audio_layer):
        layer(f"encoder/layer_{i}", f"encoder.blocks.{i}", False)
    norm("encoder/layer_norm", "encoder.ln_post")
    v["decoder/embeddings/weight"] = t["decoder.token_embedding.weight"]
    quantizable.add("decoder/embeddings/weight")
    v["decoder/position_encodings/encodings"] = t["decoder.positional_embedding"]
    for i in range(n_text_layer):
        layer(f"decoder/layer_{i}", f"decoder.blocks.{i}", True)
    norm("decoder/layer_norm", "decoder.ln")
    # The scalars CTranslate2 (4.x) writes for a Whisper decoder (spec revision 3).
    v["encoder/num_heads"] = np.int16(n_head)
    v["decoder/num_heads"] = np.int16(n_head)
    v["decoder/activation"] = np.int8(3)
    v["decoder/alibi"] = np.int8(0)
    v["decoder/alibi_use_positive_positions"] = np.int8(0)
    v["decoder/scale_alibi"] = np.int8(0)
    v["decoder/alignment_heads"] = np.int16(1)
    v["decoder/alignment_layer"] = np.int16(-1)
    v["decoder/pre_norm"] = np.int8(1)
    v["decoder/scale_embeddings"] = np.int8(0)
    v["decoder/start_from_zero_embedding"] = np.int8(0)
    return v, quantizable


def to_bfloat16_bits(x):
    """float32 → bfloat16 bits, round to nearest even."""
    b = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


def quantize(v, quantizable, quantization):
    """CTranslate2's _quantize: returns {name: (type name, array of stored values)}."""
    out = {}
    float_to = {"float16": "float16", "int8_float16": "float16", "bfloat16": "bfloat16",
                "int8_bfloat16": "bfloat16"}.get(quantization, "float32")
    for name, x in v.items():
        if np.ndim(x) == 0:
            out[name] = ({np.dtype(np.int8): "int8", np.dtype(np.int16): "int16"}[x.dtype],
                         np.asarray(x))
            continue
        if name in quantizable and quantization.startswith("int8"):
            rows = x.reshape(x.shape[0], -1).astype(np.float32)
            amax = np.abs(rows).max(axis=1)
            amax[amax == 0] = 127.0
            scale = (np.float32(127.0) / amax).astype(np.float32)
            q = np.rint(rows * scale[:, None]).astype(np.int8).reshape(x.shape)
            out[name], out[name + "_scale"] = ("int8", q), ("float32", scale)
        elif name in quantizable and quantization == "int16":
            scale = np.float32(2 ** 10 / np.abs(x).max())
            q = np.clip(np.rint(x.astype(np.float32) * scale), -32768, 32767).astype(np.int16)
            out[name], out[name + "_scale"] = ("int16", q), ("float32", np.asarray(scale))
        elif name in quantizable and quantization in ("float16", "bfloat16"):
            out[name] = (quantization, x)
        else:
            out[name] = (float_to, x)
    return out


def stored_bytes(kind, x):
    if kind == "bfloat16":
        return to_bfloat16_bits(x).astype("<u2").tobytes()
    dt = {"float32": "<f4", "float16": "<f2", "int8": "i1", "int16": "<i2", "int32": "<i4"}[kind]
    return np.asarray(x).astype(dt).tobytes()


def stored_values(kind, x):
    """What a reader gets back from the stored bytes, as float64."""
    if kind == "bfloat16":
        return (to_bfloat16_bits(x).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return np.asarray(x).astype({"float32": "<f4", "float16": "<f2"}.get(kind, "<f8")).astype(
        np.float64)


def model_bin(stored, aliases, version=6, spec="WhisperSpec", revision=3):
    def string(s):
        b = s.encode()
        return struct.pack("<H", len(b) + 1) + b + b"\0"

    out = [struct.pack("<I", version)]
    if version >= 2:
        out += [string(spec), struct.pack("<I", revision)]
    out.append(struct.pack("<I", len(stored)))
    for name in sorted(stored):
        kind, x = stored[name]
        data = stored_bytes(kind, x)
        shape = np.shape(x)
        out += [string(name), struct.pack("<B", len(shape)), struct.pack(f"<{len(shape)}I", *shape)]
        if version >= 4:
            out += [struct.pack("<BI", TYPE_IDS[kind], len(data))]
        else:
            item = {"float32": 4, "int8": 1, "int16": 2}[kind]  # the type is implied by the size
            out += [struct.pack("<BI", item, len(data) // item)]
        out.append(data)
    if version >= 3:
        out.append(struct.pack("<I", len(aliases)))
        for a, target in aliases:
            out += [string(a), string(target)]
    return b"".join(out)


def effective(stored, v, t):
    """The weights as the directory stores them, float64, under whisper.cpp's names."""
    def value(name):
        kind, x = stored[name]
        if kind in ("int8", "int16"):
            q = np.asarray(x).astype(np.float64)
            s = np.asarray(stored[name + "_scale"][1]).astype(np.float64)
            s = s.reshape((-1,) + (1,) * (q.ndim - 1)) if s.ndim else s
            return q / s
        return stored_values(kind, x)

    eff = {}
    n = v["decoder/embeddings/weight"].shape[1]
    # ct2_variables' mapping, inverted, over the stored values.
    back = {k: value(k) for k in stored if not k.endswith("_scale") and np.ndim(stored[k][1]) > 0}
    for name in t:
        parts = name.split(".")
        side = parts[0]
        if parts[1] == "blocks":
            i, rest = parts[2], parts[3:]
            base = f"{side}/layer_{i}"
            sub, leaf = rest[0], rest[-1]
            if sub in ("attn_ln", "cross_attn_ln", "mlp_ln"):
                src = {"attn_ln": "self_attention", "cross_attn_ln": "attention", "mlp_ln": "ffn"}[sub]
                eff[name] = back[f"{base}/{src}/layer_norm/" + ("gamma" if leaf == "weight" else "beta")]
                continue
            if sub == "mlp":
                lin = f"{base}/ffn/linear_" + ("0" if rest[1] == "0" else "1")
                eff[name] = back[lin + "/" + leaf]
                continue
            x = rest[1]
            if sub == "attn":
                lin, idx = ((f"{base}/self_attention/linear_0", "qkv".index(x[0]))
                            if x != "out" else (f"{base}/self_attention/linear_1", 0))
            elif x == "query":
                lin, idx = f"{base}/attention/linear_0", 0
            elif x == "out":
                lin, idx = f"{base}/attention/linear_2", 0
            else:
                lin, idx = f"{base}/attention/linear_1", "kv".index(x[0])
            eff[name] = back[lin + "/" + leaf][idx * n:(idx + 1) * n]
        else:
            key = {"encoder.conv1.weight": "encoder/conv1/weight",
                   "encoder.conv1.bias": "encoder/conv1/bias",
                   "encoder.conv2.weight": "encoder/conv2/weight",
                   "encoder.conv2.bias": "encoder/conv2/bias",
                   "encoder.positional_embedding": "encoder/position_encodings/encodings",
                   "encoder.ln_post.weight": "encoder/layer_norm/gamma",
                   "encoder.ln_post.bias": "encoder/layer_norm/beta",
                   "decoder.token_embedding.weight": "decoder/embeddings/weight",
                   "decoder.positional_embedding": "decoder/position_encodings/encodings",
                   "decoder.ln.weight": "decoder/layer_norm/gamma",
                   "decoder.ln.bias": "decoder/layer_norm/beta"}[name]
            eff[name] = back[key]
    return eff


def write_dir(path, quantization="float16", n_vocab=51865, n_audio_ctx=50, n_state=64, n_head=2,
              n_audio_layer=2, n_text_ctx=64, n_text_layer=2, n_mels=80, seed=0,
              vocab_format="json", preprocessor=False, config_extra=None, version=6, mutate=None):
    """Writes the directory; returns (hparams dict for whisper_ref, effective float64 tensors).
    mutate(stored, aliases), when given, edits the variables before model.bin is written."""
    assert quantization in QUANTIZATIONS
    rng = np.random.default_rng(seed)
    t = random_weights(rng, n_vocab, n_audio_ctx, n_state, n_audio_layer, n_text_ctx, n_text_layer,
                       n_mels)
    v, quantizable = ct2_variables(t, n_state, n_audio_layer, n_text_layer, n_head)
    stored = quantize(v, quantizable, quantization)
    aliases = [("decoder/projection/weight", "decoder/embeddings/weight")]
    eff = effective(stored, v, t)
    if mutate:
        mutate(stored, aliases)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "model.bin"), "wb") as f:
        f.write(model_bin(stored, aliases, version=version))
    toks, eot = vocabulary(n_vocab)
    n_lang = n_vocab - 1501 - 6 - (eot + 2)
    config = {"alignment_heads": [[n_text_layer - 1, h] for h in range(n_head)],
              "lang_ids": list(range(eot + 2, eot + 2 + n_lang)) if n_vocab >= 51865 else [],
              "suppress_ids": [1, 2, 7, 8, 9, 10], "suppress_ids_begin": [220, eot]}
    config.update(config_extra or {})
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if vocab_format == "json":
        with open(os.path.join(path, "vocabulary.json"), "w", encoding="utf-8") as f:
            json.dump(toks, f, ensure_ascii=False)
    else:
        with open(os.path.join(path, "vocabulary.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(toks) + "\n")
    if preprocessor:
        with open(os.path.join(path, "preprocessor_config.json"), "w") as f:
            json.dump({"feature_size": n_mels, "sampling_rate": 16000, "n_fft": 400,
                       "hop_length": 160, "chunk_length": 30}, f)
    hp = dict(n_vocab=n_vocab, n_audio_ctx=n_audio_ctx, n_audio_state=n_state,
              n_audio_head=n_head, n_audio_layer=n_audio_layer, n_text_ctx=n_text_ctx,
              n_text_state=n_state, n_text_head=n_head, n_text_layer=n_text_layer, n_mels=n_mels)
    return hp, eff
