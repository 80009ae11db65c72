"""Float64 numpy reference of CLIP (Radford et al. 2021, "Learning Transferable Visual Models From
Natural Language Supervision"), written from the paper and the Hugging Face checkpoint layout.

Both towers are pre-norm transformers: x = x + MHA(LN1(x)); x = x + MLP(LN2(x)) with
MLP = fc2(act(fc1(x))), act quick_gelu (x * sigmoid(1.702 x)) or exact gelu.
  image: split into p x p patches, each flattened (channel, y, x) and multiplied by the conv
         weight [D, 3, p, p] (no bias); prepend class_embedding; add position embeddings
         (bicubic-resampled when the grid differs); pre_layrnorm; encoder; post_layernorm of the
         class token; visual_projection; L2-normalize.
  text:  token + position embeddings; encoder with a causal mask; final_layer_norm; the state at
         the first <|endoftext|> (or at the largest id when eos_token_id == 2, as older configs
         do); text_projection; L2-normalize.
Weights are read from model.safetensors with the reader below (not eight's).
"""

import json
import math
import os
import struct

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = data[base + b:base + end]
        if e["dtype"] == "F32":
            a = np.frombuffer(raw, "<f4")
        elif e["dtype"] == "F16":
            a = np.frombuffer(raw, "<f2")
        elif e["dtype"] == "BF16":
            a = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{name}: dtype {e['dtype']}")
        out[name] = a.astype(np.float64).reshape(e["shape"])
    return out


class CLIPReference:
    def __init__(self, ckpt_dir, weights=None):
        with open(os.path.join(ckpt_dir, "config.json")) as f:
            self.config = json.load(f)
        self.w = weights if weights is not None else read_safetensors(
            os.path.join(ckpt_dir, "model.safetensors"))
        self.tc = self.config["text_config"]
        self.vc = self.config["vision_config"]

    # --- building blocks -------------------------------------------------------------------
    @staticmethod
    def layer_norm(x, g, b, eps):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * g + b

    @staticmethod
    def act(name, x):
        if name == "quick_gelu":
            return x / (1 + np.exp(-1.702 * x))
        if name == "gelu":
            erf = np.vectorize(math.erf)
            return 0.5 * x * (1 + erf(x / math.sqrt(2)))
        raise ValueError(name)

    def encoder(self, x, prefix, c, causal):
        """x: [T, D]; one sequence."""
        T, D = x.shape
        H = c["num_attention_heads"]
        d = D // H
        eps = c.get("layer_norm_eps", 1e-5)
        mask = np.triu(np.full((T, T), -np.inf), 1) if causal else np.zeros((T, T))
        for i in range(c["num_hidden_layers"]):
            p = f"{prefix}.encoder.layers.{i}."
            w = lambda n: self.w[p + n]  # noqa: E731
            h = self.layer_norm(x, w("layer_norm1.weight"), w("layer_norm1.bias"), eps)
            q = h @ w("self_attn.q_proj.weight").T + w("self_attn.q_proj.bias")
            k = h @ w("self_attn.k_proj.weight").T + w("self_attn.k_proj.bias")
            v = h @ w("self_attn.v_proj.weight").T + w("self_attn.v_proj.bias")
            q, k, v = (a.reshape(T, H, d).transpose(1, 0, 2) for a in (q, k, v))  # [H, T, d]
            s = q @ k.transpose(0, 2, 1) / math.sqrt(d) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            o = (s @ v).transpose(1, 0, 2).reshape(T, D)
            x = x + o @ w("self_attn.out_proj.weight").T + w("self_attn.out_proj.bias")
            h = self.layer_norm(x, w("layer_norm2.weight"), w("layer_norm2.bias"), eps)
            h = self.act(c.get("hidden_act", "quick_gelu"),
                         h @ w("mlp.fc1.weight").T + w("mlp.fc1.bias"))
            x = x + h @ w("mlp.fc2.weight").T + w("mlp.fc2.bias")
        return x

    @staticmethod
    def bicubic(grid, h_out, w_out):
        """grid: [g, g, D] -> [h_out, w_out, D]; cubic convolution (Keys, a = -0.75), half-pixel
        centres, taps clamped at the border."""
        a = -0.75

        def kernel(t):
            t = abs(t)
            if t <= 1:
                return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1
            if t < 2:
                return a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a
            return 0.0

        def matrix(n_in, n_out):
            m = np.zeros((n_out, n_in))
            for o in range(n_out):
                src = (o + 0.5) * n_in / n_out - 0.5
                f = math.floor(src)
                for j in range(f - 1, f + 3):
                    m[o, min(max(j, 0), n_in - 1)] += kernel(src - j)
            return m

        g = grid.shape[0]
        my, mx = matrix(g, h_out), matrix(g, w_out)
        return np.einsum("yi,xj,ijd->yxd", my, mx, grid)

    # --- towers -----------------------------------------------------------------------------
    def embed_images(self, pixels, post_norm=True, project=True):
        """pixels: [n, 3, H, W] -> [n, projection_dim], L2-normalized. Without post_norm and
        project (LLaVA's mmproj files carry neither), the class token itself, normalized."""
        c, w = self.vc, self.w
        p, D = c["patch_size"], c["hidden_size"]
        eps = c.get("layer_norm_eps", 1e-5)
        conv = w["vision_model.embeddings.patch_embedding.weight"].reshape(D, -1)
        pos = w["vision_model.embeddings.position_embedding.weight"]
        g = c["image_size"] // p
        out = []
        for img in np.asarray(pixels, np.float64):
            _, H, W = img.shape
            gh, gw = H // p, W // p
            patches = img[:, :gh * p, :gw * p].reshape(3, gh, p, gw, p)
            patches = patches.transpose(1, 3, 0, 2, 4).reshape(gh * gw, 3 * p * p)
            patch_pos = pos[1:]
            if (gh, gw) != (g, g):
                patch_pos = self.bicubic(patch_pos.reshape(g, g, D), gh, gw).reshape(gh * gw, D)
            x = np.concatenate([w["vision_model.embeddings.class_embedding"][None] + pos[:1],
                                patches @ conv.T + patch_pos])
            x = self.layer_norm(x, w["vision_model.pre_layrnorm.weight"],
                                w["vision_model.pre_layrnorm.bias"], eps)
            x = self.encoder(x, "vision_model", c, causal=False)
            cls = x[0]
            if post_norm:
                cls = self.layer_norm(cls, w["vision_model.post_layernorm.weight"],
                                      w["vision_model.post_layernorm.bias"], eps)
            e = w["visual_projection.weight"] @ cls if project else cls
            out.append(e / np.linalg.norm(e))
        return np.stack(out)

    def embed_token_ids(self, ids_list):
        """ids_list: lists of token ids with start/end tokens -> [n, projection_dim]."""
        c, w = self.tc, self.w
        eps = c.get("layer_norm_eps", 1e-5)
        eos = c.get("eos_token_id", 49407)
        out = []
        for ids in ids_list:
            ids = np.asarray(ids)
            x = (w["text_model.embeddings.token_embedding.weight"][ids]
                 + w["text_model.embeddings.position_embedding.weight"][:len(ids)])
            x = self.encoder(x, "text_model", c, causal=True)
            at = int(ids.argmax()) if eos == 2 else int((ids == eos).argmax())
            h = self.layer_norm(x[at], w["text_model.final_layer_norm.weight"],
                                w["text_model.final_layer_norm.bias"], eps)
            e = w["text_projection.weight"] @ h
            out.append(e / np.linalg.norm(e))
        return np.stack(out)
