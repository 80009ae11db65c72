#!/usr/bin/env python3
"""A tiny SDXL-shaped pipeline with deterministic random weights, written with numpy only.

    python3 tests/python/sdxl_tiny.py --out DIR [--single-file PATH] [--dtype f32|f16|bf16]

writes DIR as a diffusers directory (model_index.json, unet/, vae/, text_encoder/,
text_encoder_2/, tokenizer/, tokenizer_2/, scheduler/) and, with --single-file, the same weights
as one checkpoint in Stability's original layout (model.diffusion_model.*,
conditioner.embedders.0.transformer.*, conditioner.embedders.1.model.*, first_stage_model.*).

Tensor names and shapes come from tests/data/sdxl/manifest.json and the configs from
tests/data/sdxl/tiny/, both written once from diffusers' own modules by
tools/reference/make_sdxl_fixtures.py. Each tensor is drawn from np.random.default_rng(seed) with
a seed from the CRC-32 of "component/name", so the weights do not depend on the order of writing
and the fixtures committed beside the manifest are reproducible without torch.

The tokenizers' vocab.json and merges.txt follow from data/clip-bpe-merges.txt exactly as OpenAI's
SimpleTokenizer builds its vocabulary (256 byte symbols, the same with "</w>", one token per
merge, then <|startoftext|> and <|endoftext|>: 49408 tokens).
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import struct
import zlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "sdxl"
MERGES = ROOT / "data" / "clip-bpe-merges.txt"
COMPONENTS = {  # component -> weights file in the diffusers directory
    "unet": "diffusion_pytorch_model.safetensors",
    "vae": "diffusion_pytorch_model.safetensors",
    "text_encoder": "model.safetensors",
    "text_encoder_2": "model.safetensors",
}
N_MERGES = 49152 - 256 - 2  # SimpleTokenizer keeps merges[1:49152-256-2+1]
DTYPES = {"f32": "F32", "f16": "F16", "bf16": "BF16"}


def load_manifest():
    with open(DATA / "manifest.json") as f:
        return json.load(f)


def load_config(component):
    with open(DATA / "tiny" / component / "config.json") as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------
# Weights


def tensor_seed(component, name):
    return zlib.crc32(f"{component}/{name}".encode())


def make_tensor(component, name, shape):
    """float32 values for one tensor; the scales keep activations of order one."""
    rng = np.random.default_rng(tensor_seed(component, name))
    shape = tuple(shape)
    n = rng.standard_normal(shape, dtype=np.float32)
    if name.endswith("bias"):
        return 0.02 * n
    if "position_embedding" in name:
        return 0.01 * n
    if "token_embedding" in name:
        return 0.5 * n  # LayerNorms follow; a larger scale keeps tokens distinguishable
    if len(shape) == 1:  # every 1-D weight here is a norm's scale
        return 1.0 + 0.1 * n
    fan_in = int(np.prod(shape[1:]))
    return n / np.float32(np.sqrt(fan_in))


def make_weights(manifest):
    """{component: {name: float32 array}} in manifest order."""
    return {c: {name: make_tensor(c, name, shape) for name, shape in manifest[c]}
            for c in COMPONENTS}


def to_bf16_bits(a):
    """float32 -> bfloat16 bits (uint16), rounding to nearest even."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def from_bf16_bits(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def encode(a, dtype):
    """(safetensors dtype, little-endian bytes) of a float32 array stored as `dtype`."""
    if a.dtype == np.int64:
        return "I64", a.astype("<i8").tobytes()
    if dtype == "F32":
        return "F32", a.astype("<f4").tobytes()
    if dtype == "F16":
        return "F16", a.astype("<f2").tobytes()
    if dtype == "BF16":
        return "BF16", to_bf16_bits(a).astype("<u2").tobytes()
    raise ValueError(f"unknown dtype {dtype}")


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """tensors: {name: array}; names are written sorted, data 8-byte aligned after the header."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        a = tensors[name]
        st_dtype, data = encode(a, dtype)
        header[name] = {"dtype": st_dtype, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """{name: array} (F32/F16/I64 as numpy, BF16 widened to float32)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    types = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8"}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        a = np.frombuffer(data[begin:end], dtype=types[info["dtype"]]).reshape(info["shape"])
        out[name] = from_bf16_bits(a) if info["dtype"] == "BF16" else a
    return out


# ---------------------------------------------------------------------------------------------
# Tokenizer files


def byte_symbols():
    """GPT-2/CLIP's printable stand-ins for the 256 bytes, in vocabulary order."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) +
          list(range(ord("®"), ord("ÿ") + 1)))
    cs = list(bs)
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return [chr(c) for c in cs]


def clip_merges():
    lines = MERGES.read_text(encoding="utf-8").split("\n")
    return [tuple(line.split()) for line in lines[1:1 + N_MERGES]]


def clip_vocab(merges):
    symbols = byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}


def write_tokenizer(folder, vocab, merges):
    with open(folder / "vocab.json", "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(folder / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")


# ---------------------------------------------------------------------------------------------
# Stability's single-file names


def unet_original_name(name, cfg):
    """diffusers UNet2DConditionModel name -> name under model.diffusion_model. (the original
    UNetModel of Stability's generative-models, as diffusers' convert_*_sdxl scripts map it)."""
    fixed = {
        "time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
        "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
        "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
    }
    module, leaf = name.rsplit(".", 1)
    if module in fixed:
        return f"{fixed[module]}.{leaf}"
    per_level = cfg["layers_per_block"] + 1  # resnets per down level, plus its downsampler
    resnet = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
              ("norm2", "out_layers.0"), ("conv2", "out_layers.3"),
              ("conv_shortcut", "skip_connection")]

    def resnet_part(rest):
        for new, old in resnet:
            if rest == new or rest.startswith(new + "."):
                return old + rest[len(new):]
        raise ValueError(f"unknown resnet tensor {name}")

    m = re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", name)
    if m:
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        block = 1 + i * per_level + j
        if kind == "resnets":
            return f"input_blocks.{block}.0.{resnet_part(rest)}"
        return f"input_blocks.{block}.1.{rest}"
    m = re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", name)
    if m:
        return f"input_blocks.{(int(m[1]) + 1) * per_level}.0.op.{m[2]}"
    m = re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", name)
    if m:
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        block = i * per_level + j
        if kind == "resnets":
            return f"output_blocks.{block}.0.{resnet_part(rest)}"
        return f"output_blocks.{block}.1.{rest}"
    m = re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", name)
    if m:
        i = int(m[1])
        has_attention = cfg["up_block_types"][i].startswith("CrossAttn")
        return f"output_blocks.{i * per_level + per_level - 1}.{2 if has_attention else 1}.conv.{m[2]}"
    m = re.fullmatch(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)", name)
    if m:
        kind, j, rest = m[1], int(m[2]), m[3]
        if kind == "attentions":
            return f"middle_block.1.{rest}"
        return f"middle_block.{2 * j}.{resnet_part(rest)}"
    raise ValueError(f"no original name for unet tensor {name}")


def vae_original_name(name, cfg):
    """diffusers AutoencoderKL name -> name under first_stage_model. (the original LDM
    AutoencoderKL). The decoder's up levels are numbered from the bottom there."""
    levels = len(cfg["block_out_channels"])
    renames = [("conv_shortcut", "nin_shortcut"), ("conv_norm_out", "norm_out"),
               ("mid_block.attentions.0.group_norm", "mid.attn_1.norm"),
               ("mid_block.attentions.0.to_q", "mid.attn_1.q"),
               ("mid_block.attentions.0.to_k", "mid.attn_1.k"),
               ("mid_block.attentions.0.to_v", "mid.attn_1.v"),
               ("mid_block.attentions.0.to_out.0", "mid.attn_1.proj_out")]
    out = name
    out = re.sub(r"^encoder\.down_blocks\.(\d+)\.resnets\.", r"encoder.down.\1.block.", out)
    out = re.sub(r"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample.",
                 out)
    out = re.sub(r"^decoder\.up_blocks\.(\d+)\.resnets\.",
                 lambda m: f"decoder.up.{levels - 1 - int(m[1])}.block.", out)
    out = re.sub(r"^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.",
                 lambda m: f"decoder.up.{levels - 1 - int(m[1])}.upsample.", out)
    out = re.sub(r"\.mid_block\.resnets\.(\d+)\.", lambda m: f".mid.block_{int(m[1]) + 1}.", out)
    for new, old in renames:
        out = out.replace(new, old)
    return out


def is_vae_attention_matrix(name):
    return re.search(r"mid_block\.attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight$", name)


def clip_l_original_name(name):
    return "conditioner.embedders.0.transformer." + name


def open_clip_original_name(name):
    """HF CLIPTextModelWithProjection name -> name under conditioner.embedders.1.model.
    (q/k/v projections are fused there; callers handle them)."""
    fixed = {
        "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
        "text_model.embeddings.position_embedding.weight": "positional_embedding",
        "text_model.final_layer_norm.weight": "ln_final.weight",
        "text_model.final_layer_norm.bias": "ln_final.bias",
        "text_projection.weight": "text_projection",
    }
    if name in fixed:
        return fixed[name]
    m = re.fullmatch(r"text_model\.encoder\.layers\.(\d+)\.(.+)", name)
    if not m:
        raise ValueError(f"no OpenCLIP name for text_encoder_2 tensor {name}")
    rest = m[2]
    for new, old in [("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"),
                     ("mlp.fc2", "mlp.c_proj"), ("self_attn.out_proj", "attn.out_proj")]:
        if rest.startswith(new + "."):
            return f"transformer.resblocks.{m[1]}.{old}{rest[len(new):]}"
    raise ValueError(f"no OpenCLIP name for text_encoder_2 tensor {name}")


def single_file_tensors(weights, configs):
    """{original name: array} of the whole pipeline, from the diffusers-named weights."""
    out = {}
    unet_cfg, vae_cfg = configs["unet"], configs["vae"]
    for name, a in weights["unet"].items():
        out["model.diffusion_model." + unet_original_name(name, unet_cfg)] = a
    for name, a in weights["vae"].items():
        if is_vae_attention_matrix(name):
            a = a.reshape(a.shape + (1, 1))  # 1x1 convolutions in the original
        out["first_stage_model." + vae_original_name(name, vae_cfg)] = a
    for name, a in weights["text_encoder"].items():
        out[clip_l_original_name(name)] = a
    n_pos = configs["text_encoder"]["max_position_embeddings"]
    # A buffer that Stability's files carry and loaders ignore.
    out[clip_l_original_name("text_model.embeddings.position_ids")] = np.arange(
        n_pos, dtype=np.int64)[None]
    prefix = "conditioner.embedders.1.model."
    te2 = weights["text_encoder_2"]
    for name, a in te2.items():
        m = re.fullmatch(r"text_model\.encoder\.layers\.(\d+)\.self_attn\.(q|k|v)_proj\.(weight|bias)",
                         name)
        if m:
            if m[2] == "q":  # OpenCLIP's nn.MultiheadAttention: one [3D, D] projection
                base = f"text_model.encoder.layers.{m[1]}.self_attn."
                fused = np.concatenate([te2[f"{base}{p}_proj.{m[3]}"] for p in "qkv"])
                out[f"{prefix}transformer.resblocks.{m[1]}.attn.in_proj_{m[3]}"] = fused
            continue
        if name == "text_projection.weight":
            a = np.ascontiguousarray(a.T)  # OpenCLIP multiplies x @ P: [hidden, proj]
        out[prefix + open_clip_original_name(name)] = a
    return out


# ---------------------------------------------------------------------------------------------


def write_pipeline(out, single_file=None, dtype="f32"):
    out = pathlib.Path(out)
    st_dtype = DTYPES[dtype]
    manifest = load_manifest()
    tiny = DATA / "tiny"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tiny / "model_index.json", out / "model_index.json")
    for folder in ["unet", "vae", "text_encoder", "text_encoder_2", "scheduler", "tokenizer",
                   "tokenizer_2"]:
        (out / folder).mkdir(exist_ok=True)
        for f in sorted((tiny / folder).iterdir()):
            shutil.copyfile(f, out / folder / f.name)
    merges = clip_merges()
    vocab = clip_vocab(merges)
    for folder in ["tokenizer", "tokenizer_2"]:
        write_tokenizer(out / folder, vocab, merges)
    weights = make_weights(manifest)
    for component, filename in COMPONENTS.items():
        write_safetensors(out / component / filename, weights[component], st_dtype,
                          {"format": "pt"})
    if single_file:
        configs = {c: load_config(c) for c in COMPONENTS}
        write_safetensors(single_file, single_file_tensors(weights, configs), st_dtype)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="diffusers directory to write")
    p.add_argument("--single-file", help="also write the Stability-layout checkpoint here")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="f32")
    a = p.parse_args()
    write_pipeline(a.out, a.single_file, a.dtype)


if __name__ == "__main__":
    main()
