"""BERT GGUFs as llama.cpp's converter (convert_hf_to_gguf.py, BertModel) writes them, with the
PyPI `gguf` package: `bert.*` metadata, tokenizer.ggml.model = "bert" with the vocabulary in
llama.cpp's WordPiece layout (a word-initial piece "x" stored as "▁x", a continuation "##x" as
"x", bracketed specials unchanged), and either no tensors (vocabulary-only files, as
ggml-vocab-bert-bge.gguf) or random weights under the converter's tensor names:

  token_embd [V, D], token_types [n_types, D], position_embd [P, D], token_embd_norm {weight,bias}
  blk.N.attn_{q,k,v,output} {weight,bias}, blk.N.attn_output_norm, blk.N.ffn_up, blk.N.ffn_down,
  blk.N.layer_output_norm  (post-LN encoder layers, GELU between ffn_up and ffn_down)
"""

import numpy as np

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def to_gguf_piece(t):
    """HF vocab.txt entry -> llama.cpp's stored token text."""
    if t.startswith("##"):
        return t[2:]
    if t.startswith("[") and t.endswith("]"):
        return t
    return "\u2581" + t


def write_vocab(w, hf_vocab):
    """Writes the tokenizer.ggml.* keys of a WordPiece vocabulary (list of HF vocab.txt lines)."""
    import gguf

    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("default")
    w.add_token_list([to_gguf_piece(t) for t in hf_vocab])
    w.add_token_types([gguf.TokenType.CONTROL if t in SPECIALS else gguf.TokenType.NORMAL
                       for t in hf_vocab])
    w.add_token_type_count(2)
    w.add_unk_token_id(hf_vocab.index("[UNK]"))
    w.add_sep_token_id(hf_vocab.index("[SEP]"))
    w.add_pad_token_id(hf_vocab.index("[PAD]"))
    w.add_mask_token_id(hf_vocab.index("[MASK]"))
    # gguf-py's SpecialVocab takes [CLS]/[SEP] as BOS/EOS for BERT (older files had cls_token_id)
    w.add_bos_token_id(hf_vocab.index("[CLS]"))
    w.add_eos_token_id(hf_vocab.index("[SEP]"))
    w.add_add_bos_token(True)
    w.add_add_eos_token(True)


def write_vocab_only(path, hf_vocab, name="test-wordpiece"):
    import gguf

    w = gguf.GGUFWriter(path, "bert")
    w.add_name(name)
    write_vocab(w, hf_vocab)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def random_weights(rng, n_vocab, n_embd, n_layer, n_ff, n_ctx, n_types=2, scale=0.2):
    """float64 weights in PyTorch layout ([out, in] matrices), keyed by GGUF tensor name."""
    W = {}

    def mat(name, rows, cols, s=scale):
        W[name + ".weight"] = rng.standard_normal((rows, cols)) * s

    def vec(name, n, center=0.0, s=0.1):
        W[name] = center + rng.standard_normal(n) * s

    mat("token_embd", n_vocab, n_embd, 1.0)
    mat("token_types", n_types, n_embd, 1.0)
    mat("position_embd", n_ctx, n_embd, 1.0)
    vec("token_embd_norm.weight", n_embd, 1.0)
    vec("token_embd_norm.bias", n_embd)
    for i in range(n_layer):
        p = f"blk.{i}."
        for t in ("attn_q", "attn_k", "attn_v", "attn_output"):
            mat(p + t, n_embd, n_embd, 1.0 / np.sqrt(n_embd))
            vec(p + t + ".bias", n_embd)
        mat(p + "ffn_up", n_ff, n_embd, 1.0 / np.sqrt(n_embd))
        vec(p + "ffn_up.bias", n_ff)
        mat(p + "ffn_down", n_embd, n_ff, 1.0 / np.sqrt(n_ff))
        vec(p + "ffn_down.bias", n_embd)
        for t in ("attn_output_norm", "layer_output_norm"):
            vec(p + t + ".weight", n_embd, 1.0)
            vec(p + t + ".bias", n_embd)
    return W


def write_model(path, hf_vocab, weights, n_head, pooling, qtype="F32", eps=1e-12,
                name="random-bert"):
    """Writes a BERT embedding GGUF. Matrices are stored as `qtype` (F32, F16 or Q8_0); biases,
    norms and (as the converter does) the position/type tables stay F32. Returns the weights
    exactly as stored (dequantized, float64) for the reference."""
    import gguf

    n_vocab, n_embd = weights["token_embd.weight"].shape
    n_ctx = weights["position_embd.weight"].shape[0]
    n_layer = sum(1 for k in weights if k.endswith(".attn_q.weight"))
    n_ff = weights["blk.0.ffn_up.weight"].shape[0]
    w = gguf.GGUFWriter(path, "bert")
    w.add_name(name)
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_block_count(n_layer)
    w.add_head_count(n_head)
    w.add_layer_norm_eps(eps)
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType(pooling))
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if qtype == "F32" else
                    gguf.LlamaFileType.MOSTLY_F16 if qtype == "F16" else
                    gguf.LlamaFileType.MOSTLY_Q8_0)
    write_vocab(w, hf_vocab)
    stored = {}
    for k, v in weights.items():
        big = v.ndim == 2 and k not in ("position_embd.weight", "token_types.weight")
        if big and qtype == "F16":
            a = v.astype(np.float16)
            w.add_tensor(k, a)
            stored[k] = a.astype(np.float64)
        elif big and qtype == "Q8_0":
            q = gguf.quants.quantize(v.astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(k, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            stored[k] = gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q8_0).astype(np.float64)
        else:
            a = v.astype(np.float32)
            w.add_tensor(k, a)
            stored[k] = a.astype(np.float64)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return stored
