#!/usr/bin/env python3
"""Fixtures for eight's FLUX.1 transformer (tests/data/flux/).

Run with /work/diff-venv/bin/python (torch, diffusers):
  /work/diff-venv/bin/python tools/reference/make_flux_transformer.py

Tiny random diffusers FluxTransformer2DModel instances (2 heads x head_dim 16, axes_dim 4+6+6,
2 double + 2 single blocks, in_channels 64, joint_attention_dim 32, pooled 16), weights rounded to
bfloat16 (as flux1-schnell.safetensors stores them), and one forward call each in float64:

  schnell/                      diffusers layout: config.json + diffusion_pytorch_model.safetensors
  schnell_bfl.safetensors       the same weights in BFL's names (flux1-schnell.safetensors style)
  schnell_fp8.safetensors       BFL names, 2-D weights as float8_e4m3fn (biases, norms bf16)
  dev_bfl.safetensors           guidance_embeds=True (guidance_in.*), BFL names
  in_{img,txt,pooled,img_ids,txt_ids,sigma,guidance}.npy   one call's inputs (float32)
  out_schnell.npy, out_schnell_fp8.npy, out_dev.npy   the velocities [n_img, 64] (float32)

The BFL names follow the mapping documented by diffusers' single-file converter
(convert_flux_transformer_checkpoint_to_diffusers): fused qkv rows are q, k, v; single blocks'
linear1 rows are q, k, v, mlp; final_layer.adaLN_modulation.1 rows are (shift, scale) where
diffusers' norm_out.linear rows are (scale, shift).
"""
import json
import os

import numpy as np
import torch
from diffusers import FluxTransformer2DModel
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "flux")

CONFIG = dict(patch_size=1, in_channels=64, num_layers=2, num_single_layers=2,
              attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
              pooled_projection_dim=16, axes_dims_rope=(4, 6, 6))


def make_model(seed, guidance):
    torch.manual_seed(seed)
    m = FluxTransformer2DModel(**CONFIG, guidance_embeds=guidance)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name and p.dim() == 1 and not name.endswith("linear.bias"):
                p.copy_(1 + 0.2 * torch.randn_like(p))  # RMS q/k norm scales
            elif p.dim() == 2:
                p.copy_(torch.randn_like(p) / np.sqrt(p.shape[1]))
            else:
                p.copy_(0.1 * torch.randn_like(p))
            p.copy_(p.to(torch.bfloat16).float())
    return m


def to_bfl(sd, n_double, n_single):
    """diffusers state dict -> BFL names (the inverse of diffusers' single-file converter)."""
    out = {}

    def cat(*names):
        return torch.cat([sd.pop(n) for n in names], 0)

    def pair(bfl, diff):
        for s in ("weight", "bias"):
            out[f"{bfl}.{s}"] = sd.pop(f"{diff}.{s}")

    pair("img_in", "x_embedder")
    pair("txt_in", "context_embedder")
    pair("time_in.in_layer", "time_text_embed.timestep_embedder.linear_1")
    pair("time_in.out_layer", "time_text_embed.timestep_embedder.linear_2")
    pair("vector_in.in_layer", "time_text_embed.text_embedder.linear_1")
    pair("vector_in.out_layer", "time_text_embed.text_embedder.linear_2")
    if "time_text_embed.guidance_embedder.linear_1.weight" in sd:
        pair("guidance_in.in_layer", "time_text_embed.guidance_embedder.linear_1")
        pair("guidance_in.out_layer", "time_text_embed.guidance_embedder.linear_2")
    for i in range(n_double):
        b, d = f"double_blocks.{i}", f"transformer_blocks.{i}"
        pair(f"{b}.img_mod.lin", f"{d}.norm1.linear")
        pair(f"{b}.txt_mod.lin", f"{d}.norm1_context.linear")
        for s in ("weight", "bias"):
            out[f"{b}.img_attn.qkv.{s}"] = cat(*(f"{d}.attn.to_{x}.{s}" for x in "qkv"))
            out[f"{b}.txt_attn.qkv.{s}"] = cat(*(f"{d}.attn.add_{x}_proj.{s}" for x in "qkv"))
        out[f"{b}.img_attn.norm.query_norm.scale"] = sd.pop(f"{d}.attn.norm_q.weight")
        out[f"{b}.img_attn.norm.key_norm.scale"] = sd.pop(f"{d}.attn.norm_k.weight")
        out[f"{b}.txt_attn.norm.query_norm.scale"] = sd.pop(f"{d}.attn.norm_added_q.weight")
        out[f"{b}.txt_attn.norm.key_norm.scale"] = sd.pop(f"{d}.attn.norm_added_k.weight")
        pair(f"{b}.img_attn.proj", f"{d}.attn.to_out.0")
        pair(f"{b}.txt_attn.proj", f"{d}.attn.to_add_out")
        pair(f"{b}.img_mlp.0", f"{d}.ff.net.0.proj")
        pair(f"{b}.img_mlp.2", f"{d}.ff.net.2")
        pair(f"{b}.txt_mlp.0", f"{d}.ff_context.net.0.proj")
        pair(f"{b}.txt_mlp.2", f"{d}.ff_context.net.2")
    for i in range(n_single):
        b, d = f"single_blocks.{i}", f"single_transformer_blocks.{i}"
        pair(f"{b}.modulation.lin", f"{d}.norm.linear")
        for s in ("weight", "bias"):
            out[f"{b}.linear1.{s}"] = cat(*(f"{d}.attn.to_{x}.{s}" for x in "qkv"),
                                          f"{d}.proj_mlp.{s}")
        pair(f"{b}.linear2", f"{d}.proj_out")
        out[f"{b}.norm.query_norm.scale"] = sd.pop(f"{d}.attn.norm_q.weight")
        out[f"{b}.norm.key_norm.scale"] = sd.pop(f"{d}.attn.norm_k.weight")
    for s in ("weight", "bias"):
        scale, shift = sd.pop(f"norm_out.linear.{s}").chunk(2, 0)
        out[f"final_layer.adaLN_modulation.1.{s}"] = torch.cat([shift, scale], 0)
    pair("final_layer.linear", "proj_out")
    assert not sd, f"unmapped: {sorted(sd)}"
    return out


def run(m, inp, guidance):
    m = m.double()
    with torch.no_grad():
        t = lambda k: torch.from_numpy(inp[k]).double()
        y = m(hidden_states=t("img")[None], encoder_hidden_states=t("txt")[None],
              pooled_projections=t("pooled")[None], timestep=t("sigma").reshape(1),
              img_ids=t("img_ids"), txt_ids=t("txt_ids"),
              guidance=t("guidance").reshape(1) if guidance else None, return_dict=False)[0]
    m.float()
    return y[0].float().numpy()


def bf16(sd):
    return {k: v.to(torch.bfloat16).contiguous() for k, v in sd.items()}


def main():
    os.makedirs(os.path.join(OUT, "schnell"), exist_ok=True)
    rng = np.random.default_rng(20)
    h, w, n_txt = 2, 3, 5  # a 4x6 latent packed 2x2 -> 6 image tokens
    img_ids = np.zeros((h * w, 3), np.float32)
    img_ids[:, 1] = np.repeat(np.arange(h), w)
    img_ids[:, 2] = np.tile(np.arange(w), h)
    txt_ids = np.zeros((n_txt, 3), np.float32)
    txt_ids[:, 0] = np.arange(n_txt) * 0.5  # exercise the first rotary axis as well
    inp = dict(img=rng.standard_normal((h * w, 64)).astype(np.float32),
               txt=rng.standard_normal((n_txt, 32)).astype(np.float32),
               pooled=rng.standard_normal(16).astype(np.float32), img_ids=img_ids,
               txt_ids=txt_ids, sigma=np.array([0.75], np.float32),
               guidance=np.array([3.5], np.float32))
    for k, v in inp.items():
        np.save(os.path.join(OUT, f"in_{k}.npy"), v)

    schnell = make_model(1, False)
    np.save(os.path.join(OUT, "out_schnell.npy"), run(schnell, inp, False))
    sd = {k: v.clone() for k, v in schnell.state_dict().items()}
    save_file(bf16(sd), os.path.join(OUT, "schnell", "diffusion_pytorch_model.safetensors"))
    cfg = dict(schnell.config)
    cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()
           if not k.startswith("_")}
    cfg["_class_name"] = "FluxTransformer2DModel"
    with open(os.path.join(OUT, "schnell", "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    bfl = to_bfl(dict(sd), 2, 2)
    save_file(bf16(bfl), os.path.join(OUT, "schnell_bfl.safetensors"))

    # FP8 e4m3fn copy: 2-D weights rounded (torch's round-to-nearest cast), the rest bf16; the
    # reference runs with exactly those rounded weights.
    f8 = {k: (v.to(torch.float8_e4m3fn) if v.dim() == 2 else v.to(torch.bfloat16)).contiguous()
          for k, v in bfl.items()}
    save_file(f8, os.path.join(OUT, "schnell_fp8.safetensors"))
    rounded = {k: v.float() for k, v in to_bfl(dict(sd), 2, 2).items()}
    for k in rounded:
        rounded[k] = f8[k].float()
    back = from_bfl_via_names(schnell, rounded)
    np.save(os.path.join(OUT, "out_schnell_fp8.npy"), run(back, inp, False))

    dev = make_model(2, True)
    np.save(os.path.join(OUT, "out_dev.npy"), run(dev, inp, True))
    save_file(bf16(to_bfl(dict(dev.state_dict()), 2, 2)), os.path.join(OUT, "dev_bfl.safetensors"))


def from_bfl_via_names(model, bfl_values):
    """A copy of `model` whose weights are `bfl_values` mapped back through to_bfl's naming."""
    import copy
    m = copy.deepcopy(model)
    sd = m.state_dict()
    # Build the mapping by tracing to_bfl on index-tagged tensors: each diffusers tensor gets a
    # unique value range, so the BFL tensor rows tell where they came from.
    tagged, offset = {}, 0
    for k, v in sd.items():
        n = v.numel()
        tagged[k] = torch.arange(offset, offset + n, dtype=torch.float64).reshape(v.shape)
        offset += n
    flat = torch.zeros(offset, dtype=torch.float64)
    for k, v in to_bfl(dict(tagged), 2, 2).items():
        flat[v.reshape(-1).long()] = bfl_values[k].double().reshape(-1)
    new = {}
    for k, v in tagged.items():
        new[k] = flat[v.reshape(-1).long()].reshape(v.shape).float()
    m.load_state_dict(new)
    return m


if __name__ == "__main__":
    main()
