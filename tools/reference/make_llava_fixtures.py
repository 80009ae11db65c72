#!/usr/bin/env python3
"""Writes LLaVA-NeXT (LLaVA 1.6) fixtures to tests/data/llava/ from transformers' reference code.

Needs torch and transformers (CPU is enough), which the test suite does not install; run it once
in a separate environment and commit what it writes:

    /work/diff-venv/bin/python tools/reference/make_llava_fixtures.py

What it writes:
- img_*.png: generated images of several aspect ratios (landscape, portrait, square, very wide).
- preprocessor_config.json + preprocess.json + levels_*.npy: LlavaNextImageProcessor (PIL backend)
  output for each image with 42 px tiles and pinpoints that select every grid shape, stored as
  uint8 levels (pixel_values un-normalized × 255, exact: the processor's values are level/255
  normalized) to keep the fixture small.
- tiny/: a random-weight LlavaNextForConditionalGeneration saved as a Hugging Face directory
  (F32 safetensors, config.json, preprocessor_config.json): a 3-layer CLIP vision tower with 42 px
  images and 14 px patches (3 × 3 patches per tile), vision_feature_layer -2, "default" selection,
  a Llama-shaped 2-layer text model with 64 dims.
- features_*.npy: the packed image features (get_image_features: vision tower hidden state -2
  without CLS, the 2-layer GELU projector, pack_image_features' spatial unpad with image_newline,
  base tile first) for each image, float32 [n_image_tokens, 64]; counts in preprocess.json.
"""
import json
import pathlib

import numpy as np
import torch
from PIL import Image
from transformers import (CLIPVisionConfig, LlamaConfig, LlavaNextConfig,
                          LlavaNextForConditionalGeneration, LlavaNextImageProcessorPil)

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "llava"
TILE = 42
PINPOINTS = [[42, 84], [84, 42], [84, 84], [126, 42], [42, 126]]
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
IMAGES = {"img_wide.png": (60, 40), "img_tall.png": (30, 100), "img_square.png": (50, 50),
          "img_panorama.png": (200, 70), "img_small.png": (7, 5)}
PREPROCESS = {
    "image_processor_type": "LlavaNextImageProcessor", "processor_class": "LlavaNextProcessor",
    "size": {"shortest_edge": TILE}, "crop_size": {"height": TILE, "width": TILE},
    "image_grid_pinpoints": PINPOINTS, "resample": 3, "do_resize": True, "do_center_crop": True,
    "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "do_pad": True,
    "do_convert_rgb": True, "image_mean": MEAN.tolist(), "image_std": STD.tolist(),
}


def make_image(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255.0 / max(w - 1, 1), y * 255.0 / max(h - 1, 1),
                     (x + y) * 127.0 / max(w + h - 2, 1)], axis=-1)
    return Image.fromarray(np.clip(base + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8))


def tiny_model():
    torch.manual_seed(0)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                              num_attention_heads=4, image_size=TILE, patch_size=14,
                              hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=32)
    text = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, vocab_size=160,
                       max_position_embeddings=512, rms_norm_eps=1e-5, rope_theta=10000.0,
                       bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    cfg = LlavaNextConfig(vision_config=vision, text_config=text, image_token_index=150,
                          image_grid_pinpoints=PINPOINTS, vision_feature_layer=-2,
                          vision_feature_select_strategy="default", projector_hidden_act="gelu",
                          tie_word_embeddings=False)
    model = LlavaNextForConditionalGeneration(cfg).eval()
    with torch.no_grad():  # larger than the default init so every part moves the output
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.15)
            elif "norm" in name and name.endswith("weight"):
                p.normal_(1.0, 0.1)
            else:
                p.normal_(0.0, 0.1)
    return model


def main():
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "preprocessor_config.json").write_text(json.dumps(PREPROCESS, indent=1) + "\n")
    proc = LlavaNextImageProcessorPil(**{k: v for k, v in PREPROCESS.items()
                                        if k not in ("image_processor_type", "processor_class")})
    model = tiny_model()
    tiny = DATA / "tiny"
    model.save_pretrained(tiny, safe_serialization=True)
    (tiny / "preprocessor_config.json").write_text(json.dumps(PREPROCESS, indent=1) + "\n")
    meta = {"images": []}
    for i, (name, (w, h)) in enumerate(IMAGES.items()):
        make_image(w, h, 100 + i).save(DATA / name)
        im = Image.open(DATA / name)
        out = proc(im, return_tensors="np")
        pixels = out["pixel_values"][0]
        lv = (pixels * STD[None, :, None, None] + MEAN[None, :, None, None]) * 255
        levels = np.round(lv)
        assert np.abs(lv - levels).max() < 1e-3, "processor output is not on the 1/255 grid"
        stem = name[:-4]
        np.save(DATA / f"levels_{stem}.npy", levels.astype(np.uint8))
        with torch.no_grad():
            feats = model.model.get_image_features(
                pixel_values=torch.from_numpy(pixels)[None], image_sizes=torch.tensor([[h, w]]),
                vision_feature_layer=-2, vision_feature_select_strategy="default").pooler_output
        f = feats[0].float().numpy()
        np.save(DATA / f"features_{stem}.npy", f.astype(np.float32))
        meta["images"].append({"file": name, "width": w, "height": h,
                               "levels": f"levels_{stem}.npy", "tiles": int(pixels.shape[0]),
                               "features": f"features_{stem}.npy", "n_image_tokens": int(f.shape[0])})
        print(name, pixels.shape, f.shape)
    (DATA / "preprocess.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
