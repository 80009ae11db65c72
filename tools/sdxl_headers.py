#!/usr/bin/env python3
"""Writes an SDXL-base-sized diffusers folder whose safetensors files hold real headers (every
tensor name and shape of stabilityai/stable-diffusion-xl-base-1.0) and no data: the data region is
a hole (a sparse file), so the folder takes a few kilobytes of disk but has the real file sizes.
`eight plan` reads only headers, so it plans the real model from it:

    python3 tools/sdxl_headers.py --out /tmp/sdxl-base --dtype f16
    eight plan /tmp/sdxl-base -W 1024 -H 1024

Names and shapes follow diffusers' UNet2DConditionModel, AutoencoderKL and transformers'
CLIPTextModel / CLIPTextModelWithProjection built from SDXL base's configs; the parameter counts
are checked against the published ones (UNet 2,567,463,684; VAE 83,653,863; text encoders
123,060,480 and 694,659,840)."""
import argparse
import json
import os
import pathlib

BYTES = {"F32": 4, "F16": 2, "BF16": 2}


def unet():
    t = []
    ch, depth, cross, ted = [320, 640, 1280], [0, 2, 10], 2048, 1280

    def conv(n, co, ci, k=3):
        t.extend([(n + ".weight", [co, ci, k, k]), (n + ".bias", [co])])

    def lin(n, o, i, bias=True):
        t.append((n + ".weight", [o, i]))
        if bias:
            t.append((n + ".bias", [o]))

    def norm(n, c):
        t.extend([(n + ".weight", [c]), (n + ".bias", [c])])

    def res(p, ci, co):
        norm(p + ".norm1", ci)
        conv(p + ".conv1", co, ci)
        lin(p + ".time_emb_proj", co, ted)
        norm(p + ".norm2", co)
        conv(p + ".conv2", co, co)
        if ci != co:
            conv(p + ".conv_shortcut", co, ci, 1)

    def attn(p, c, d):
        norm(p + ".norm", c)
        lin(p + ".proj_in", c, c)
        for b in range(d):
            q = f"{p}.transformer_blocks.{b}"
            norm(q + ".norm1", c)
            for x in ("to_q", "to_k", "to_v"):
                lin(f"{q}.attn1.{x}", c, c, False)
            lin(q + ".attn1.to_out.0", c, c)
            norm(q + ".norm2", c)
            lin(q + ".attn2.to_q", c, c, False)
            lin(q + ".attn2.to_k", c, cross, False)
            lin(q + ".attn2.to_v", c, cross, False)
            lin(q + ".attn2.to_out.0", c, c)
            norm(q + ".norm3", c)
            lin(q + ".ff.net.0.proj", 8 * c, c)
            lin(q + ".ff.net.2", c, 4 * c)
        lin(p + ".proj_out", c, c)

    conv("conv_in", 320, 4)
    lin("time_embedding.linear_1", ted, 320)
    lin("time_embedding.linear_2", ted, ted)
    lin("add_embedding.linear_1", ted, 2816)
    lin("add_embedding.linear_2", ted, ted)
    c_prev = 320
    for i, c in enumerate(ch):
        for j in range(2):
            res(f"down_blocks.{i}.resnets.{j}", c_prev if j == 0 else c, c)
            if depth[i]:
                attn(f"down_blocks.{i}.attentions.{j}", c, depth[i])
        if i < 2:
            conv(f"down_blocks.{i}.downsamplers.0.conv", c, c)
        c_prev = c
    res("mid_block.resnets.0", 1280, 1280)
    attn("mid_block.attentions.0", 1280, 10)
    res("mid_block.resnets.1", 1280, 1280)
    rev, rdepth = ch[::-1], depth[::-1]
    prev = 1280
    for i, c in enumerate(rev):
        inp = rev[min(i + 1, 2)]
        for j in range(3):
            skip = inp if j == 2 else c
            res(f"up_blocks.{i}.resnets.{j}", (prev if j == 0 else c) + skip, c)
            if rdepth[i]:
                attn(f"up_blocks.{i}.attentions.{j}", c, rdepth[i])
        if i < 2:
            conv(f"up_blocks.{i}.upsamplers.0.conv", c, c)
        prev = c
    norm("conv_norm_out", 320)
    conv("conv_out", 4, 320)
    return t


def vae():
    t = []
    ch = [128, 256, 512, 512]

    def conv(n, co, ci, k=3):
        t.extend([(n + ".weight", [co, ci, k, k]), (n + ".bias", [co])])

    def norm(n, c):
        t.extend([(n + ".weight", [c]), (n + ".bias", [c])])

    def res(p, ci, co):
        norm(p + ".norm1", ci)
        conv(p + ".conv1", co, ci)
        norm(p + ".norm2", co)
        conv(p + ".conv2", co, co)
        if ci != co:
            conv(p + ".conv_shortcut", co, ci, 1)

    def mid(p):
        res(p + ".resnets.0", 512, 512)
        norm(p + ".attentions.0.group_norm", 512)
        for x in ("to_q", "to_k", "to_v", "to_out.0"):
            t.extend([(f"{p}.attentions.0.{x}.weight", [512, 512]),
                      (f"{p}.attentions.0.{x}.bias", [512])])
        res(p + ".resnets.1", 512, 512)

    conv("encoder.conv_in", 128, 3)
    prev = 128
    for i, c in enumerate(ch):
        for j in range(2):
            res(f"encoder.down_blocks.{i}.resnets.{j}", prev if j == 0 else c, c)
        if i < 3:
            conv(f"encoder.down_blocks.{i}.downsamplers.0.conv", c, c)
        prev = c
    mid("encoder.mid_block")
    norm("encoder.conv_norm_out", 512)
    conv("encoder.conv_out", 8, 512)
    conv("quant_conv", 8, 8, 1)
    conv("post_quant_conv", 4, 4, 1)
    conv("decoder.conv_in", 512, 4)
    mid("decoder.mid_block")
    prev = 512
    for i, c in enumerate(ch[::-1]):
        for j in range(3):
            res(f"decoder.up_blocks.{i}.resnets.{j}", prev if j == 0 else c, c)
        if i < 3:
            conv(f"decoder.up_blocks.{i}.upsamplers.0.conv", c, c)
        prev = c
    norm("decoder.conv_norm_out", 128)
    conv("decoder.conv_out", 3, 128)
    return t


def clip_text(D, layers, inter, projection):
    t = [("text_model.embeddings.token_embedding.weight", [49408, D]),
         ("text_model.embeddings.position_embedding.weight", [77, D])]
    for i in range(layers):
        p = f"text_model.encoder.layers.{i}"
        for x in ("q_proj", "k_proj", "v_proj", "out_proj"):
            t += [(f"{p}.self_attn.{x}.weight", [D, D]), (f"{p}.self_attn.{x}.bias", [D])]
        for n in ("layer_norm1", "layer_norm2"):
            t += [(f"{p}.{n}.weight", [D]), (f"{p}.{n}.bias", [D])]
        t += [(f"{p}.mlp.fc1.weight", [inter, D]), (f"{p}.mlp.fc1.bias", [inter]),
              (f"{p}.mlp.fc2.weight", [D, inter]), (f"{p}.mlp.fc2.bias", [D])]
    t += [("text_model.final_layer_norm.weight", [D]), ("text_model.final_layer_norm.bias", [D])]
    if projection:
        t.append(("text_projection.weight", [D, D]))
    return t


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def write_headers(path, tensors, dtype):
    header, at = {}, 0
    for name, shape in tensors:
        size = numel(shape) * BYTES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + size]}
        at += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
    os.truncate(path, 8 + len(text) + at)  # the data: a hole


PARAMS = {"unet": 2567463684, "vae": 83653863, "text_encoder": 123060480,
          "text_encoder_2": 694659840}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", default="f16", choices=["f32", "f16", "bf16"])
    a = ap.parse_args()
    out, dtype = pathlib.Path(a.out), a.dtype.upper()
    parts = {"unet": unet(), "vae": vae(), "text_encoder": clip_text(768, 12, 3072, False),
             "text_encoder_2": clip_text(1280, 32, 5120, True)}
    for name, tensors in parts.items():
        n = sum(numel(s) for _, s in tensors)
        assert n == PARAMS[name], f"{name}: {n} parameters, SDXL base has {PARAMS[name]}"
        file = "model" if name.startswith("text") else "diffusion_pytorch_model"
        write_headers(out / name / f"{file}.safetensors", tensors, dtype)
    (out / "text_encoder" / "config.json").write_text(json.dumps({"num_attention_heads": 12}))
    (out / "text_encoder_2" / "config.json").write_text(json.dumps({"num_attention_heads": 20}))
    (out / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline"}))


if __name__ == "__main__":
    main()
