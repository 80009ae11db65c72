"""float64 numpy reference of a BERT embedding model as transformers' BertModel computes it
(post-LN encoder layers, exact erf GELU, no attention mask needed for one unpadded sequence),
followed by sentence-transformers style pooling (mean over tokens or the [CLS] row) and L2
normalisation, as llama.cpp's embedding output for `bert.pooling_type` 1 (mean) / 2 (CLS)."""

import math

import numpy as np

_erf = np.vectorize(math.erf)


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def hidden_states(W, ids, n_head, eps=1e-12):
    ids = np.asarray(ids)
    T = len(ids)
    x = W["token_embd.weight"][ids] + W["position_embd.weight"][:T] + W["token_types.weight"][0]
    x = layer_norm(x, W["token_embd_norm.weight"], W["token_embd_norm.bias"], eps)
    D = x.shape[1]
    hd = D // n_head
    i = 0
    while f"blk.{i}.attn_q.weight" in W:
        p = f"blk.{i}."

        def lin(name, h):
            return h @ W[p + name + ".weight"].T + W[p + name + ".bias"]

        q = lin("attn_q", x).reshape(T, n_head, hd).transpose(1, 0, 2)
        k = lin("attn_k", x).reshape(T, n_head, hd).transpose(1, 0, 2)
        v = lin("attn_v", x).reshape(T, n_head, hd).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(T, D)
        x = layer_norm(x + lin("attn_output", a), W[p + "attn_output_norm.weight"],
                       W[p + "attn_output_norm.bias"], eps)
        f = lin("ffn_down", gelu(lin("ffn_up", x)))
        x = layer_norm(x + f, W[p + "layer_output_norm.weight"], W[p + "layer_output_norm.bias"],
                       eps)
        i += 1
    return x


def embed(W, ids, n_head, pooling, eps=1e-12, normalize=True):
    h = hidden_states(W, ids, n_head, eps)
    e = h.mean(0) if pooling == 1 else h[0]
    if normalize:
        e = e / max(np.linalg.norm(e), 1e-12)
    return e
