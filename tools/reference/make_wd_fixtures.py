#!/usr/bin/env python3
"""Writes WD v3 tagger fixtures to tests/data/wd/ from timm's reference models.

Needs torch, torchvision and timm (CPU is enough), which the test suite does not install; run it
once in a separate environment and commit what it writes:

    /work/diff-venv/bin/python tools/reference/make_wd_fixtures.py

SmilingWolf's WD v3 taggers are timm models saved as model.safetensors + config.json
(timm's {"architecture", "num_classes", "model_args", "pretrained_cfg"}) + selected_tags.csv
(tag_id,name,category,count; the 4 rating tags first, then general tags, then character tags).
This script makes tiny random ones of the same families and key layouts, 64 px input:

- vit/: vit_base_patch16_224 with model_args as the WD ViT sets them (img_size, class_token false,
  global_pool avg, fc_norm false, act_layer gelu_tanh) plus small dims (36 wide, 2 blocks, 3 heads).
- vit_cls/: the same family with timm's defaults instead (class token pooled, exact GELU, a
  pre-norm), so the loader's reading of model_args is exercised both ways.
- convnext/: convnext_base with depths (1, 1, 2, 1) and dims (16, 24, 32, 40).
- swinv2/: swinv2_base_window8_256 at img_size 64, window_size 4, embed_dim 8, depths (1, 1, 2, 1),
  heads (1, 1, 2, 2), act_layer gelu_tanh (the WD SwinV2 runs window 14 at 448).
Each model is reloaded through timm's own `local-dir:` loader (as a user's folder is) before its
outputs are taken. Every parameter, layer-scale gammas included, is drawn at random so nothing
is an identity; the head is scaled so the probabilities spread over (0, 1).

- images/a.png (80x50 RGB), images/b.png (48x90 RGB) and images/c.png (70x70 RGBA, half
  transparent, half opaque, with a half-transparent box): inputs.
- expected.npz: for each model folder M, M_probs float32 [3, n_tags] (sigmoid of the model's
  logits for the three images).
- levels.npy: float16 [3, 64, 64, 3], the 8-bit RGB levels of the three images after padding and
  the bicubic resize (before scaling); the model input is (level / 255 - 0.5) / 0.5 in BGR order,
  which the script asserts against timm's tensors.
  Preprocessing is the WD reference for the timm models (neggles/wdv3-timm, which SmilingWolf's
  model cards point to): RGBA composited on white, padded to a square on white (image centered),
  then timm's eval transform from pretrained_cfg (resize bicubic to input_size, ToTensor,
  normalize with mean/std), then RGB -> BGR (the models were trained on BGR input).
"""
import json
import pathlib
import sys

import numpy as np
import timm
import torch
from PIL import Image, ImageDraw
from safetensors.torch import save_file
from timm.data import create_transform, resolve_data_config

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "wd"
SIZE = 64

# Tag names that exercise the prompt-line rules: underscores, parentheses, a backslash-free
# kaomoji with an underscore mouth, and quoting in the CSV.
GENERAL = ["1girl", "solo", "long_hair", "smile", "^_^", "looking_at_viewer", "blue_eyes",
           "shirt", "open_mouth", "holding", "simple_background", "white_background", "hat",
           "upper_body", ":d", "standing", "outdoors", "sky", "cloud", "day", "tree", "grass",
           "flower", "multiple_girls", "2girls", "red_hair", "twintails", "closed_eyes",
           "dress", "o_o"]
CHARACTER = ["hatsune_miku", "ganyu_(genshin_impact)", "hakurei_reimu", "kirisame_marisa",
             "saber_(fate)", "artoria_pendragon_(fate)"]
RATING = ["general", "sensitive", "questionable", "explicit"]


def write_tags(folder: pathlib.Path):
    lines = ["tag_id,name,category,count"]
    tid = 9999999
    for name in RATING:
        lines.append(f"{tid},{name},9,{1000000 + tid % 7}")
        tid += 1
    for i, name in enumerate(GENERAL):
        quoted = f'"{name}"' if i % 5 == 0 else name  # RFC 4180 quoting, as pandas may write it
        lines.append(f"{470575 + i},{quoted},0,{5000000 - 1000 * i}")
    for i, name in enumerate(CHARACTER):
        lines.append(f"{1000 + i},{name},4,{90000 - 100 * i}")
    (folder / "selected_tags.csv").write_text("\n".join(lines) + "\n")
    return len(RATING) + len(GENERAL) + len(CHARACTER)


PRETRAINED_CFG = {
    "custom_load": False,
    "input_size": [3, SIZE, SIZE],
    "fixed_input_size": False,
    "interpolation": "bicubic",
    "crop_pct": 1.0,
    "crop_mode": "center",
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
    "pool_size": None,
    "first_conv": None,
    "classifier": None,
}

MODELS = {
    "vit": ("vit_base_patch16_224",
            {"img_size": SIZE, "class_token": False, "global_pool": "avg", "fc_norm": False,
             "act_layer": "gelu_tanh", "embed_dim": 36, "depth": 2, "num_heads": 3}),
    "vit_cls": ("vit_base_patch16_224",
                {"img_size": SIZE, "embed_dim": 24, "depth": 2, "num_heads": 2,
                 "pre_norm": True}),
    "convnext": ("convnext_base",
                 {"depths": [1, 1, 2, 1], "dims": [16, 24, 32, 40], "act_layer": "gelu_tanh"}),
    "swinv2": ("swinv2_base_window8_256",
               {"img_size": SIZE, "window_size": 4, "embed_dim": 8, "depths": [1, 1, 2, 1],
                "num_heads": [1, 1, 2, 2], "act_layer": "gelu_tanh"}),
}


def make_images():
    (OUT / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    a = Image.new("RGB", (80, 50), (30, 120, 200))
    d = ImageDraw.Draw(a)
    d.ellipse((10, 5, 45, 40), fill=(250, 210, 40))
    d.rectangle((50, 10, 75, 45), fill=(200, 30, 60))
    arr = np.asarray(a).astype(np.int16) + rng.integers(-20, 21, (50, 80, 3))
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(OUT / "images" / "a.png")
    yy, xx = np.mgrid[0:90, 0:48]
    b = np.stack([xx * 5, yy * 2, (xx + yy) * 2], -1) % 256
    b = (b + rng.integers(0, 30, b.shape)).clip(0, 255).astype(np.uint8)
    Image.fromarray(b).save(OUT / "images" / "b.png")
    c = np.zeros((70, 70, 4), np.uint8)
    c[..., :3] = rng.integers(0, 256, (70, 70, 3))
    c[:, 35:, 3] = 255  # the left half transparent (with colors under it), the right opaque
    c[20:50, 10:30, 3] = 128  # and a half-transparent box
    Image.fromarray(c, "RGBA").save(OUT / "images" / "c.png")
    return ["a.png", "b.png", "c.png"]


def ensure_rgb(img):  # wdv3-timm's pil_ensure_rgb
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode == "RGBA":
        canvas = Image.new("RGBA", img.size, (255, 255, 255))
        canvas.alpha_composite(img)
        img = canvas.convert("RGB")
    return img


def pad_square(img):  # wdv3-timm's pil_pad_square
    w, h = img.size
    px = max(w, h)
    canvas = Image.new("RGB", (px, px), (255, 255, 255))
    canvas.paste(img, ((px - w) // 2, (px - h) // 2))
    return canvas


def levels_of(transform, names):
    """The 8-bit RGB images after padding and the resize/crop, before ToTensor: [n, S, S, 3]."""
    pil_steps = [t for t in transform.transforms if type(t).__name__ in ("Resize", "CenterCrop")]
    out = []
    for n in names:
        img = pad_square(ensure_rgb(Image.open(OUT / "images" / n)))
        for t in pil_steps:
            img = t(img)
        out.append(np.asarray(img))
    return np.stack(out)


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or ".norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.startswith("head") and name.endswith("weight"):
                p.copy_(torch.randn(p.shape, generator=g) * 2.0 / p.shape[-1] ** 0.5)
            elif "logit_scale" in name:
                p.copy_(torch.log(torch.full(p.shape, 10.0)) + 0.3 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel() if p.dim() > 1 else 16
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


def main():
    torch.manual_seed(0)
    names = make_images()
    expected = {}
    for seed, (folder_name, (arch, args)) in enumerate(MODELS.items()):
        folder = OUT / folder_name
        folder.mkdir(parents=True, exist_ok=True)
        n_tags = write_tags(folder)
        model = timm.create_model(arch, pretrained=False, num_classes=n_tags, **args).eval()
        randomize(model, 100 + seed)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()
                   if not k.endswith("relative_position_index") and "attn_mask" not in k
                   and "relative_coords_table" not in k},
                  str(folder / "model.safetensors"))
        config = {"architecture": arch, "num_classes": n_tags,
                  "num_features": model.num_features,
                  "global_pool": args.get("global_pool", "token" if "vit" in arch else "avg"),
                  "model_args": args,
                  "pretrained_cfg": dict(PRETRAINED_CFG, num_classes=n_tags)}
        (folder / "config.json").write_text(json.dumps(config, indent=4) + "\n")

        # Reload as a user's folder is loaded, then run the WD reference preprocessing.
        ref = timm.create_model("local-dir:" + str(folder), pretrained=True).eval()
        transform = create_transform(**resolve_data_config(ref.pretrained_cfg, model=ref))
        pixels = []
        for n in names:
            img = pad_square(ensure_rgb(Image.open(OUT / "images" / n)))
            pixels.append(transform(img)[[2, 1, 0]])  # RGB -> BGR
        x = torch.stack(pixels)
        with torch.no_grad():
            probs = torch.sigmoid(ref(x))
            probs64 = torch.sigmoid(ref.double()(x.double()))
        print(folder_name, arch, "probs", probs64.min().item(), probs64.max().item(),
              "f32 vs f64 max", (probs.double() - probs64).abs().max().item(), file=sys.stderr)
        expected[f"{folder_name}_probs"] = probs64.numpy().astype(np.float32)
        if folder_name == "vit":
            # The model input is exactly (level / 255 - 0.5) / 0.5 of these levels, BGR: check it.
            levels = levels_of(transform, names)
            want = (torch.from_numpy(levels).permute(0, 3, 1, 2)[:, [2, 1, 0]] / 255.0 - 0.5) / 0.5
            assert torch.equal(want.float(), x), "levels do not give the pixels"
            np.save(OUT / "levels.npy", levels.astype(np.float16))
    np.savez_compressed(OUT / "expected.npz", **expected)


if __name__ == "__main__":
    main()
