#!/usr/bin/env python3
"""T5-XXL-shaped encoder speed: eight vs PyTorch on the CPU, same threads, interleaved runs.

Writes a config-less single file laid out as t5xxl_fp16.safetensors (T5 v1.1 XXL dimensions:
d_model 4096, 64 heads of 64, d_ff 10240 gated-gelu, vocab 32128) with random F16 weights and
--layers blocks (XXL has 24; the time per block is what scales), then times one sequence of
--tokens tokens: eight embed (its logged forward time, weights used in place from the F16 file,
float32 compute) against transformers' T5EncoderModel in float32 (the same weights upcast) with
torch.set_num_threads(--threads). Run with /work/diff-venv/bin/python (torch, transformers).
"""
import argparse
import json
import os
import re
import statistics
import struct
import subprocess
import time

import numpy as np

D, H, DK, FF, VOCAB = 4096, 64, 64, 10240, 32128


def write_file(path, layers, seed=0):
    rng = np.random.default_rng(seed)
    tensors = {"shared.weight": (VOCAB, D), "encoder.final_layer_norm.weight": (D,)}
    for i in range(layers):
        b = f"encoder.block.{i}.layer."
        for w in "qkv":
            tensors[f"{b}0.SelfAttention.{w}.weight"] = (H * DK, D)
        tensors[f"{b}0.SelfAttention.o.weight"] = (D, H * DK)
        if i == 0:
            tensors[f"{b}0.SelfAttention.relative_attention_bias.weight"] = (32, H)
        tensors[f"{b}0.layer_norm.weight"] = (D,)
        tensors[f"{b}1.DenseReluDense.wi_0.weight"] = (FF, D)
        tensors[f"{b}1.DenseReluDense.wi_1.weight"] = (FF, D)
        tensors[f"{b}1.DenseReluDense.wo.weight"] = (D, FF)
        tensors[f"{b}1.layer_norm.weight"] = (D,)
    header, at = {}, 0
    for k, shape in tensors.items():
        n = int(np.prod(shape)) * 2
        header[k] = {"dtype": "F16", "shape": list(shape), "data_offsets": [at, at + n]}
        at += n
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for k, shape in tensors.items():
            if "layer_norm" in k:
                a = rng.uniform(0.5, 1.5, shape)
            elif k == "shared.weight":
                a = rng.normal(0, 1.0, shape)
            else:
                a = rng.normal(0, 1.0 / np.sqrt(shape[1]), shape)
            f.write(a.astype(np.float16).tobytes())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eight", default="build/bin/eight")
    ap.add_argument("--file", default="/tmp/t5xxl_shaped_fp16.safetensors")
    ap.add_argument("--tokenizer", required=True, help="spiece.model or tokenizer.json")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if not os.path.exists(a.file):
        write_file(a.file, a.layers)

    import torch
    import transformers
    from safetensors.torch import load_file

    torch.set_num_threads(a.threads)
    cfg = transformers.T5Config(vocab_size=VOCAB, d_model=D, d_kv=DK, num_heads=H, d_ff=FF,
                                num_layers=a.layers, feed_forward_proj="gated-gelu",
                                dropout_rate=0.0)
    model = transformers.T5EncoderModel(cfg).eval()
    sd = {k: v.float() for k, v in load_file(a.file).items()}
    sd["encoder.embed_tokens.weight"] = sd["shared.weight"]
    model.load_state_dict(sd, strict=True)
    text = " ".join(["word"] * 4 * a.tokens)
    cmd = [a.eight, "embed", "-m", a.file, "--tokenizer", a.tokenizer, "--text", text,
           "--max-sequence-length", str(a.tokens), "-t", str(a.threads), "--json"]
    ids = None
    eight_s, torch_s = [], []
    for _ in range(a.runs):
        r = subprocess.run(cmd, capture_output=True, text=True, check=True,
                           env=dict(os.environ, EIGHT_LOG="info"))
        eight_s.append(float(re.search(r"encoded \d+ tokens in ([0-9.e+-]+) s", r.stderr).group(1)))
        ids = json.loads(r.stdout)[0]["ids"]
        x = torch.tensor([ids])
        with torch.no_grad():
            t0 = time.perf_counter()
            model(input_ids=x)
            torch_s.append(time.perf_counter() - t0)
        print(f"run: eight {eight_s[-1]:.2f} s, torch {torch_s[-1]:.2f} s, load {os.getloadavg()[0]:.1f}",
              flush=True)
    print(json.dumps({"tokens": len(ids), "layers": a.layers, "threads": a.threads,
                      "eight_s": eight_s, "torch_f32_s": torch_s,
                      "eight_median_s": statistics.median(eight_s),
                      "torch_median_s": statistics.median(torch_s),
                      "load": os.getloadavg()}))


if __name__ == "__main__":
    main()
