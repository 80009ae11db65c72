#!/usr/bin/env python3
"""Captioning speed, eight vs PyTorch, on a BLIP-base-shaped random model (ViT-B/16 at 384 px,
12-layer BERT decoder): greedy, 20 new tokens, the same thread count, runs interleaved.

    /work/diff-venv/bin/python bench/bench_blip.py [--threads 2] [--rounds 2] [--dir /tmp/blip-base]

eight's time per image is (4 images - 1 image) / 3 of `eight caption` wall times (the load
excluded); PyTorch's is `model.generate` after a warm-up. Prints the load average beside each.
"""
import argparse
import json
import os
import pathlib
import subprocess
import time

import torch
from PIL import Image
from transformers import BlipConfig, BlipForConditionalGeneration
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

ROOT = pathlib.Path(__file__).resolve().parents[1]


def make_model(out):
    if (out / "model.safetensors").exists():
        return
    torch.manual_seed(0)
    m = BlipForConditionalGeneration(BlipConfig()).eval()
    with torch.no_grad():  # ordinary-sized vision weights (BLIP initializes them at 1e-10)
        for n, p in m.vision_model.named_parameters():
            if "norm" in n and n.endswith("weight"):
                p.fill_(1.0)
            elif n.endswith("bias"):
                p.zero_()
            else:
                p.normal_(0, 0.02)
    m.save_pretrained(out)
    toks = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    toks += [f"w{i}" for i in range(30522 - len(toks))]
    (out / "vocab.txt").write_text("\n".join(toks) + "\n")
    (out / "tokenizer_config.json").write_text(
        json.dumps({"bos_token": "[DEC]", "extra_special_tokens": ["[ENC]"]}))
    (out / "preprocessor_config.json").write_text(json.dumps({"size": {"height": 384, "width": 384}}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--dir", default="/tmp/blip-base")
    ap.add_argument("--eight", default=str(ROOT / "build" / "bin" / "eight"))
    a = ap.parse_args()
    d = pathlib.Path(a.dir)
    make_model(d)
    img = ROOT / "tests" / "data" / "blip" / "noise.png"
    torch.set_num_threads(a.threads)
    model = BlipForConditionalGeneration.from_pretrained(d).eval()
    px = BlipImageProcessorPil(size={"height": 384, "width": 384})(
        Image.open(img), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ref = model.generate(pixel_values=px)[0].tolist()[1:]  # warm-up
    for r in range(a.rounds):
        cmd = [a.eight, "caption", "-m", str(d), "-t", str(a.threads), "--json"]
        t0 = time.perf_counter()
        out = json.loads(subprocess.run(cmd + [str(img)], capture_output=True, check=True).stdout)
        t1 = time.perf_counter()
        subprocess.run(cmd + [str(img)] * 4, capture_output=True, check=True)
        t2 = time.perf_counter()
        load_e = os.getloadavg()[0]
        with torch.no_grad():
            t3 = time.perf_counter()
            model.generate(pixel_values=px)
            t4 = time.perf_counter()
        same = out["captions"][0]["tokens"] == [t for t in ref if t != 102]
        print(f"round {r + 1}: eight {((t2 - t1) - (t1 - t0)) / 3:.2f} s/image (load {load_e:.1f}), "
              f"torch {t4 - t3:.2f} s/image (load {os.getloadavg()[0]:.1f}), tokens equal: {same}")


if __name__ == "__main__":
    main()
