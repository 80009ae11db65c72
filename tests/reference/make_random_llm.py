"""Random-weight GGUF LLMs (llama / phi3 / qwen2) written with the PyPI `gguf` package.

Used by tests/python/test_llm_reference.py to hold `eight logits` against llm_ref.py on many
shapes, GQA ratios, rope variants and tensor types without any downloaded model. Independent of
eight's own writer and quantizer.

Quantized tensors are random *blocks*: every byte of a block is random except its float16 scale
fields, which are set so that the dequantized weights have the wanted size. That exercises every
bit pattern of a format, and the weights are exactly what the format's definition (as implemented
by gguf.quants.dequantize) says they are.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_bytes import byte_to_unicode  # noqa: E402

# Byte offsets of the float16 scale fields ("d", "dmin"/"m") inside one block, per type.
SCALE_FIELDS = {
    "Q4_0": [0],
    "Q4_1": [0, 2],
    "Q5_0": [0],
    "Q5_1": [0, 2],
    "Q8_0": [0],
    "Q2_K": [80, 82],
    "Q3_K": [108],
    "Q4_K": [0, 2],
    "Q5_K": [0, 2],
    "Q6_K": [208],
    "IQ4_NL": [0],
    "IQ4_XS": [0],
}
FLOAT_TYPES = ("F32", "F16", "BF16")


def _random_blocks(gguf, rng, rows, cols, qname, target_rms):
    qt = gguf.GGMLQuantizationType[qname]
    block, size = gguf.GGML_QUANT_SIZES[qt]
    if cols % block != 0:
        raise ValueError(f"{qname}: row length {cols} is not a multiple of {block}")
    nb = cols // block
    raw = rng.integers(0, 256, size=(rows, nb, size), dtype=np.uint8)
    fields = SCALE_FIELDS[qname]
    u = rng.uniform(0.5, 1.5, size=(rows, nb, len(fields)))

    def set_scales(vals):
        f16 = vals.astype(np.float16).view(np.uint8).reshape(rows, nb, len(fields), 2)
        for j, off in enumerate(fields):
            raw[:, :, off : off + 2] = f16[:, :, j, :]

    set_scales(u)
    w = gguf.quants.dequantize(raw.reshape(rows, nb * size), qt)
    rms = float(np.sqrt(np.mean(w.astype(np.float64) ** 2)))
    set_scales(u * (target_rms / rms))
    return raw.reshape(rows, nb * size), qt


def _tensor(gguf, rng, rows, cols, qname, target_rms):
    """(data, raw_dtype) for GGUFWriter.add_tensor; matrices are [rows=out, cols=in]."""
    if qname in FLOAT_TYPES:
        w = (rng.standard_normal((rows, cols)) * target_rms).astype(np.float32)
        if qname == "F32":
            return w, None
        if qname == "F16":
            return w.astype(np.float16), None
        return gguf.quants.quantize(w, gguf.GGMLQuantizationType.BF16), gguf.GGMLQuantizationType.BF16
    return _random_blocks(gguf, rng, rows, cols, qname, target_rms)


def byte_vocab(extra=0):
    """GPT-2 byte-level tokens for the 256 bytes (+ `extra` filler tokens), and 3 specials."""
    by_byte = byte_to_unicode()
    tokens = [by_byte[b] for b in range(256)]
    merges = []
    # a few real merges so the BPE has something to do
    for a, b in (("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a")):
        merges.append(f"{a} {b}")
        tokens.append(a + b)
    tokens += [f"<|filler_{i}|>" for i in range(extra)]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    types = [1] * len(tokens) + [3] * len(specials)
    return tokens + specials, types, merges


def add_byte_tokenizer(w, tokens, types, merges):
    """byte_vocab()'s tokenizer as GGUF metadata: GPT-2 BPE, BOS <|endoftext|>, EOS <|im_end|>."""
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(len(tokens) - 3)
    w.add_eos_token_id(len(tokens) - 1)
    w.add_add_bos_token(True)


def make_model(path, arch="llama", n_layer=2, n_embd=128, n_head=4, n_kv=2, n_ff=256,
               n_vocab=320, qtype="F16", tied=False, rope_base=10000.0, rope_linear=None,
               rope_freqs=False, longrope=False, sliding_window=None, n_ctx=1024, eps=1e-5,
               seed=0, out_qtype=None, embd_qtype=None):
    """Writes one random model; returns a dict describing it."""
    import gguf

    rng = np.random.default_rng(seed)
    head_dim = n_embd // n_head
    tokens, types, merges = byte_vocab()
    if n_vocab < len(tokens):
        raise ValueError(f"n_vocab {n_vocab} < {len(tokens)} built-in tokens")
    tokens, types, merges = byte_vocab(n_vocab - len(tokens))

    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"random-{arch}")
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(eps)
    w.add_rope_freq_base(rope_base)
    w.add_rope_dimension_count(head_dim)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if qtype == "F16" else gguf.LlamaFileType.ALL_F32)
    if rope_linear:
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rope_linear)
    if sliding_window:
        w.add_sliding_window(sliding_window)
    if longrope:
        w.add_rope_scaling_orig_ctx_len(n_ctx // 4)
        w.add_rope_scaling_attn_factors(1.19)
    add_byte_tokenizer(w, tokens, types, merges)

    def mat(name, rows, cols, q=qtype, rms=None):
        data, raw = _tensor(gguf, rng, rows, cols, q, rms if rms is not None else cols**-0.5)
        w.add_tensor(name, data, raw_dtype=raw)

    def vec(name, n, mean=1.0, std=0.1):
        w.add_tensor(name, (mean + std * rng.standard_normal(n)).astype(np.float32))

    mat("token_embd.weight", n_vocab, n_embd, q=embd_qtype or qtype, rms=1.0)
    if rope_freqs:
        # Llama 3.1 style: high frequencies kept, low ones stretched up to 8x
        w.add_tensor("rope_freqs.weight", np.linspace(1.0, 8.0, head_dim // 2).astype(np.float32))
    if longrope:
        w.add_tensor("rope_factors_short.weight",
                     rng.uniform(1.0, 2.0, head_dim // 2).astype(np.float32))
        w.add_tensor("rope_factors_long.weight",
                     rng.uniform(2.0, 8.0, head_dim // 2).astype(np.float32))
    kvd = n_kv * head_dim
    for i in range(n_layer):
        p = f"blk.{i}."
        vec(p + "attn_norm.weight", n_embd)
        if arch == "phi3":
            mat(p + "attn_qkv.weight", n_embd + 2 * kvd, n_embd)
        else:
            mat(p + "attn_q.weight", n_embd, n_embd)
            mat(p + "attn_k.weight", kvd, n_embd)
            mat(p + "attn_v.weight", kvd, n_embd)
            if arch == "qwen2":
                vec(p + "attn_q.bias", n_embd, 0.0, 0.5)
                vec(p + "attn_k.bias", kvd, 0.0, 0.5)
                vec(p + "attn_v.bias", kvd, 0.0, 0.5)
        mat(p + "attn_output.weight", n_embd, n_embd)
        vec(p + "ffn_norm.weight", n_embd)
        if arch == "phi3":
            mat(p + "ffn_up.weight", 2 * n_ff, n_embd)
        else:
            mat(p + "ffn_gate.weight", n_ff, n_embd)
            mat(p + "ffn_up.weight", n_ff, n_embd)
        mat(p + "ffn_down.weight", n_embd, n_ff)
    vec("output_norm.weight", n_embd)
    if not tied:
        mat("output.weight", n_vocab, n_embd, q=out_qtype or qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dict(path=path, arch=arch, n_vocab=n_vocab, bos=len(tokens) - 3, qtype=qtype)
