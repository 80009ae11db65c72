#!/usr/bin/env python3
"""A deterministic random LoRA for the tiny SDXL pipeline of sdxl_tiny.py, written with numpy only.

    python3 tests/python/sdxl_tiny_lora.py --out DIR

writes the same low-rank factors in the layouts people publish:

    DIR/kohya.safetensors            lora_unet_<original-layout module>, lora_te1_, lora_te2_
                                     (.lora_down.weight / .lora_up.weight / .alpha), as sd-scripts
                                     saves SDXL LoRAs
    DIR/kohya_diffusers.safetensors  the same modules under diffusers' UNet paths
                                     (lora_unet_down_blocks_1_...), as LCM-LoRA; same alphas
    DIR/peft.safetensors             unet.<path>.lora_A.weight / .lora_B.weight, text_encoder.,
                                     text_encoder_2. (diffusers' save_lora_weights; no alphas, so
                                     each module's factor is 1)

The modules cover UNet self- and cross-attention, the feed-forward, proj_in/proj_out, ResNet
convolutions (LoCon: down [r, C_in, 3, 3], up [C_out, r, 1, 1]) and a time-embedding projection,
and both text encoders (text_encoder_2's q/k/v are slices of one fused tensor in a single file).
Factors are drawn from np.random.default_rng with a CRC-32 seed of the module name.
"""
import argparse
import pathlib
import sys
import zlib

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import sdxl_tiny  # noqa: E402

ALPHA = 2.0  # one alpha for every kohya module: factor 0.5 at rank 4, 1 at rank 2

# (component, diffusers/HF module, rank)
MODULES = [
    ("unet", "down_blocks.1.attentions.0.proj_in", 4),
    ("unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", 4),
    ("unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k", 4),
    ("unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", 4),
    ("unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0", 4),
    ("unet", "down_blocks.1.attentions.0.transformer_blocks.0.ff.net.0.proj", 4),
    ("unet", "down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2", 4),
    ("unet", "down_blocks.1.attentions.0.proj_out", 4),
    ("unet", "down_blocks.1.resnets.0.conv1", 4),
    ("unet", "mid_block.attentions.0.transformer_blocks.0.attn1.to_v", 2),
    ("unet", "up_blocks.0.attentions.1.transformer_blocks.1.attn2.to_q", 4),
    ("unet", "up_blocks.1.resnets.2.conv2", 4),
    ("text_encoder", "text_model.encoder.layers.0.self_attn.out_proj", 4),
    ("text_encoder", "text_model.encoder.layers.1.mlp.fc1", 4),
    ("text_encoder_2", "text_model.encoder.layers.0.self_attn.v_proj", 4),
    ("text_encoder_2", "text_model.encoder.layers.1.self_attn.out_proj", 2),
    ("text_encoder_2", "text_model.encoder.layers.1.mlp.fc2", 4),
]

KOHYA_PREFIX = {"unet": "lora_unet_", "text_encoder": "lora_te1_", "text_encoder_2": "lora_te2_"}


def factors(component, module, weight_shape, rank):
    """(down, up) float32 for a weight of `weight_shape` ([out, in] or [out, in, kh, kw])."""
    rng = np.random.default_rng(zlib.crc32(f"lora/{component}/{module}".encode()))
    out, rest = weight_shape[0], tuple(weight_shape[1:])
    fan_in = int(np.prod(rest))
    down = rng.standard_normal((rank, *rest), dtype=np.float32) / np.float32(np.sqrt(fan_in))
    up_shape = (out, rank) if len(rest) == 1 else (out, rank, 1, 1)
    up = rng.standard_normal(up_shape, dtype=np.float32) * np.float32(0.5 / np.sqrt(rank))
    return down, up


def make_lora():
    """[(component, module, down, up)] for the tiny pipeline's shapes."""
    manifest = sdxl_tiny.load_manifest()
    shapes = {c: dict((n, s) for n, s in manifest[c]) for c in sdxl_tiny.COMPONENTS}
    return [(c, m, *factors(c, m, shapes[c][m + ".weight"], r)) for c, m, r in MODULES]


def kohya_tensors(lora, original_layout):
    cfg = sdxl_tiny.load_config("unet")
    out = {}
    for component, module, down, up in lora:
        path = module
        if component == "unet" and original_layout:
            path = sdxl_tiny.unet_original_name(module + ".weight", cfg)[:-len(".weight")]
        key = KOHYA_PREFIX[component] + path.replace(".", "_")
        out[key + ".lora_down.weight"] = down
        out[key + ".lora_up.weight"] = up
        out[key + ".alpha"] = np.array(ALPHA, np.float32)
    return out


def peft_tensors(lora):
    out = {}
    for component, module, down, up in lora:
        out[f"{component}.{module}.lora_A.weight"] = down
        out[f"{component}.{module}.lora_B.weight"] = up
    return out


def write_loras(out, dtype="F32"):
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lora = make_lora()
    files = {
        "kohya": kohya_tensors(lora, original_layout=True),
        "kohya_diffusers": kohya_tensors(lora, original_layout=False),
        "peft": peft_tensors(lora),
    }
    for name, tensors in files.items():
        sdxl_tiny.write_safetensors(out / f"{name}.safetensors", tensors, dtype,
                                    metadata={"format": "pt"})
    return {name: out / f"{name}.safetensors" for name in files}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder to write the LoRA files into")
    p.add_argument("--dtype", choices=sorted(sdxl_tiny.DTYPES), default="f32")
    args = p.parse_args()
    for path in write_loras(args.out, sdxl_tiny.DTYPES[args.dtype]).values():
        print(path)


if __name__ == "__main__":
    main()
