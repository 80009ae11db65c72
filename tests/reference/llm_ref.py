"""Float64 numpy reference for the `llama`, `phi3` and `qwen2` GGUF architectures.

Written from the papers and the GGUF checkpoint layout, independently of eight's C++ code, so the
tests can hold the runtime against something that shares none of its bugs:

- RMSNorm (Zhang & Sennrich 2019): x / sqrt(mean(x^2) + eps) * w.
- SwiGLU feed-forward (Shazeer 2020): down(silu(gate(x)) * up(x)).
- Rotary position embeddings (Su et al. 2021), angle pos * base^(-2i/n_rot) for pair i.
  GGUF `llama` stores q/k so that the pairs are adjacent elements (2i, 2i+1) ("norm" style);
  `phi3` and `qwen2` pair element i with i + n_rot/2 ("neox" style). Only the first n_rot
  elements of a head rotate.
- Grouped-query attention (Ainslie et al. 2023): query head h reads kv head h // (n_head/n_kv).
- Linear RoPE scaling (positions divided by the factor), Llama-3.1 `rope_freqs` (each pair's
  wavelength multiplied by its factor), Phi-3 LongRoPE (`rope_factors_short`/`_long`, chosen by
  the runtime context, cos/sin scaled by the attention factor), optional sliding window.
- phi3: fused `attn_qkv` rows [q | k | v] and fused `ffn_up` rows [gate | up].
- qwen2: q/k/v biases.
- No `output.weight`: the output projection is the token embedding matrix (tied).

Weights are dequantized with the PyPI `gguf` package (gguf.quants.dequantize) and everything after
that is float64.
"""

import math

import numpy as np


class ReferenceError(Exception):
    pass


class GgufModel:
    """Metadata and float64 tensors of one GGUF file (tensors dequantized on first use)."""

    def __init__(self, path):
        import gguf

        self.path = path
        self._gguf = gguf
        self.reader = gguf.GGUFReader(path)
        self.meta = {}
        for key, field in self.reader.fields.items():
            try:
                self.meta[key] = field.contents()
            except Exception:  # fields the package cannot decode are not needed here
                pass
        self._tensors = {t.name: t for t in self.reader.tensors}
        self._cache = {}
        self.arch = self.meta.get("general.architecture")
        if self.arch is None:
            raise ReferenceError(f"{path}: no general.architecture")

    def has(self, name):
        return name in self._tensors

    def tensor(self, name):
        """float64 array in numpy order (GGUF ne reversed): matrices are [out, in]."""
        if name in self._cache:
            return self._cache[name]
        t = self._tensors.get(name)
        if t is None:
            raise ReferenceError(f"{self.path}: missing tensor {name}")
        shape = tuple(int(x) for x in reversed(t.shape))
        data = self._gguf.quants.dequantize(t.data, t.tensor_type)
        arr = np.asarray(data, dtype=np.float64).reshape(shape)
        self._cache[name] = arr
        return arr

    def key(self, suffix, default=None, required=False):
        full = f"{self.arch}.{suffix}"
        if full in self.meta:
            return self.meta[full]
        if required:
            raise ReferenceError(f"{self.path}: missing metadata {full}")
        return default


class Hparams:
    def __init__(self, m):
        self.arch = m.arch
        if m.arch not in ("llama", "phi3", "qwen2"):
            raise ReferenceError(f"{m.path}: unsupported architecture {m.arch}")
        self.n_embd = int(m.key("embedding_length", required=True))
        self.n_layer = int(m.key("block_count", required=True))
        self.n_ff = int(m.key("feed_forward_length", required=True))
        self.n_head = int(m.key("attention.head_count", required=True))
        self.n_kv = int(m.key("attention.head_count_kv", self.n_head))
        self.head_dim = int(m.key("attention.key_length", self.n_embd // self.n_head))
        self.eps = float(m.key("attention.layer_norm_rms_epsilon", required=True))
        self.n_rot = int(m.key("rope.dimension_count", self.head_dim))
        self.base = float(m.key("rope.freq_base", 10000.0))
        self.n_ctx_train = int(m.key("context_length", 4096))
        self.swa = m.key("attention.sliding_window")
        self.rope_type = m.key("rope.scaling.type")
        self.rope_scale = float(m.key("rope.scaling.factor", 1.0) or 1.0)
        self.n_ctx_orig = int(m.key("rope.scaling.original_context_length", self.n_ctx_train))
        self.attn_factor = m.key("rope.scaling.attn_factor")
        self.neox = m.arch in ("phi3", "qwen2")
        if self.n_head % self.n_kv != 0:
            raise ReferenceError(f"{m.path}: head_count {self.n_head} not a multiple of "
                                 f"head_count_kv {self.n_kv}")


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def silu(x):
    return x / (1.0 + np.exp(-x))


def rope_tables(hp, positions, freq_factors=None, mscale=1.0):
    """cos/sin [n_tokens, n_rot/2] for the given positions."""
    half = hp.n_rot // 2
    inv = hp.base ** (-2.0 * np.arange(half, dtype=np.float64) / hp.n_rot)
    if freq_factors is not None:
        inv = inv / freq_factors[:half]
    pos = np.asarray(positions, dtype=np.float64)
    if hp.rope_type == "linear" and hp.rope_scale != 1.0:
        pos = pos / hp.rope_scale
    ang = pos[:, None] * inv[None, :]
    return np.cos(ang) * mscale, np.sin(ang) * mscale


def apply_rope(x, cos, sin, n_rot, neox):
    """x: [n_tokens, n_heads, head_dim]; rotates the first n_rot elements of each head."""
    out = x.copy()
    c, s = cos[:, None, :], sin[:, None, :]
    if neox:
        h = n_rot // 2
        a, b = x[..., :h], x[..., h:n_rot]
        out[..., :h] = a * c - b * s
        out[..., h:n_rot] = a * s + b * c
    else:
        a, b = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
        out[..., 0:n_rot:2] = a * c - b * s
        out[..., 1:n_rot:2] = a * s + b * c
    return out


def attention(q, k, v, hp, use_swa):
    """q: [T, n_head, hd], k/v: [T, n_kv, hd] -> [T, n_head * hd], causal."""
    T = q.shape[0]
    group = hp.n_head // hp.n_kv
    k = np.repeat(k, group, axis=1)
    v = np.repeat(v, group, axis=1)
    scores = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(hp.head_dim)
    qi, ki = np.arange(T)[:, None], np.arange(T)[None, :]
    masked = ki > qi
    if use_swa and hp.swa:
        masked |= (qi - ki) >= int(hp.swa)
    scores = np.where(masked[None], -np.inf, scores)
    scores -= scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    return np.einsum("hqk,khd->qhd", p, v).reshape(T, hp.n_head * hp.head_dim)


def _rope_params(m, hp, n_ctx):
    """Per-pair frequency factors and cos/sin scale for this model and runtime context."""
    if m.has("rope_freqs.weight"):  # Llama 3.1
        return m.tensor("rope_freqs.weight"), 1.0
    if m.has("rope_factors_long.weight") or m.has("rope_factors_short.weight"):  # LongRoPE
        long = n_ctx > hp.n_ctx_orig
        name = "rope_factors_long.weight" if long else "rope_factors_short.weight"
        if not m.has(name):
            name = "rope_factors_long.weight" if not long else "rope_factors_short.weight"
        ff = m.tensor(name)
        if hp.attn_factor is not None:
            mscale = float(hp.attn_factor)
        else:
            scale = hp.n_ctx_train / hp.n_ctx_orig
            mscale = 1.0 if scale <= 1.0 else math.sqrt(1.0 + math.log(scale) / math.log(hp.n_ctx_orig))
        return ff, mscale
    return None, 1.0


def forward(model, tokens, n_ctx=None, use_swa=True, hidden=False):
    """Logits [n_tokens, n_vocab] (float64) after every position of `tokens`; with hidden, the
    final normed hidden states [n_tokens, n_embd] instead (what last-token pooling embeds).

    model: GgufModel or path. n_ctx: the runtime context (chooses LongRoPE short/long factors);
    default the model's trained context.
    """
    m = model if isinstance(model, GgufModel) else GgufModel(model)
    hp = Hparams(m)
    tokens = np.asarray(tokens, dtype=np.int64)
    emb = m.tensor("token_embd.weight")
    if tokens.min() < 0 or tokens.max() >= emb.shape[0]:
        raise ReferenceError(f"token id out of range [0, {emb.shape[0]})")
    T = len(tokens)
    x = emb[tokens]
    ff, mscale = _rope_params(m, hp, n_ctx if n_ctx is not None else hp.n_ctx_train)
    cos, sin = rope_tables(hp, np.arange(T), ff, mscale)
    qd, kvd = hp.n_head * hp.head_dim, hp.n_kv * hp.head_dim
    for i in range(hp.n_layer):
        p = f"blk.{i}."
        h = rms_norm(x, m.tensor(p + "attn_norm.weight"), hp.eps)
        if hp.arch == "phi3":
            qkv = h @ m.tensor(p + "attn_qkv.weight").T
            q, k, v = qkv[:, :qd], qkv[:, qd : qd + kvd], qkv[:, qd + kvd : qd + 2 * kvd]
        else:
            q = h @ m.tensor(p + "attn_q.weight").T
            k = h @ m.tensor(p + "attn_k.weight").T
            v = h @ m.tensor(p + "attn_v.weight").T
            for name, arr in (("attn_q.bias", "q"), ("attn_k.bias", "k"), ("attn_v.bias", "v")):
                if m.has(p + name):
                    b = m.tensor(p + name)
                    if arr == "q":
                        q = q + b
                    elif arr == "k":
                        k = k + b
                    else:
                        v = v + b
        q = apply_rope(q.reshape(T, hp.n_head, hp.head_dim), cos, sin, hp.n_rot, hp.neox)
        k = apply_rope(k.reshape(T, hp.n_kv, hp.head_dim), cos, sin, hp.n_rot, hp.neox)
        v = v.reshape(T, hp.n_kv, hp.head_dim)
        x = x + attention(q, k, v, hp, use_swa) @ m.tensor(p + "attn_output.weight").T
        h = rms_norm(x, m.tensor(p + "ffn_norm.weight"), hp.eps)
        if hp.arch == "phi3":
            gu = h @ m.tensor(p + "ffn_up.weight").T
            act = silu(gu[:, : hp.n_ff]) * gu[:, hp.n_ff :]
        else:
            act = silu(h @ m.tensor(p + "ffn_gate.weight").T) * (h @ m.tensor(p + "ffn_up.weight").T)
        x = x + act @ m.tensor(p + "ffn_down.weight").T
    x = rms_norm(x, m.tensor("output_norm.weight"), hp.eps)
    if hidden:
        return x
    out = m.tensor("output.weight") if m.has("output.weight") else emb
    return x @ out.T


def nmse(test, ref):
    """sum((test - ref)^2) / sum(ref^2) over all positions."""
    test = np.asarray(test, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.sum((test - ref) ** 2) / np.sum(ref**2))
