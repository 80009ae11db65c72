#!/usr/bin/env python3
"""EnCodec decoding speed, eight vs PyTorch, on an encodec_32khz-shaped random model (64 filters,
128-dim latent, ratios 8, 5, 4, 4, 2-layer LSTM, 4 x 2048 codes): 10 s of audio (500 frames),
the same thread count, runs interleaved.

    /work/diff-venv/bin/python bench/bench_encodec.py [--threads 2] [--rounds 3] [--frames 500]

eight's time is `eight music --codes --json`'s decode_seconds (the load excluded); PyTorch's is
EncodecModel.decode after a warm-up. Real-time factor = audio seconds / decoding seconds (above
1: faster than real time). Also prints the NMSE between the two outputs, so the timing compares
the same computation. Prints the load average beside each number.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import tempfile
import time

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import EncodecConfig, EncodecModel

ROOT = pathlib.Path(__file__).resolve().parents[1]


def make_model(out):
    cfg = EncodecConfig(upsampling_ratios=[8, 5, 4, 4], target_bandwidths=[2.2], num_filters=64,
                        sampling_rate=32000, codebook_size=2048, use_causal_conv=False,
                        normalize=False, use_conv_shortcut=False, hidden_size=128,
                        codebook_dim=128, num_lstm_layers=2)
    torch.manual_seed(0)
    m = EncodecModel(cfg).eval()
    with torch.no_grad():
        for layer in m.quantizer.layers:
            layer.codebook.embed.normal_()
    if not (out / "model.safetensors").exists():
        m.save_pretrained(out)
        st = out / "model.safetensors"
        save_file({k: v for k, v in load_file(st).items() if not k.startswith("encoder.")}, st,
                  metadata={"format": "pt"})
    return m


def load():
    return os.getloadavg()[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--frames", type=int, default=500)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "encodec-32khz-random"))
    ap.add_argument("--cli", default=str(ROOT / "build" / "bin" / "eight"))
    args = ap.parse_args()
    out = pathlib.Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    model = make_model(out)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 2048, (4, args.frames), generator=gen)
    np.save(out / "codes.npy", codes.numpy().astype(np.int32))
    seconds = args.frames * 640 / 32000

    def run_eight():
        r = subprocess.run([args.cli, "music", "-m", str(out), "--codes", str(out / "codes.npy"),
                            "-o", str(out / "eight.wav"), "--float", "--json",
                            "-t", str(args.threads)], capture_output=True, text=True, check=True)
        return json.loads(r.stdout)["decode_seconds"]

    def run_torch():
        t0 = time.perf_counter()
        with torch.no_grad():
            audio = model.decode(codes[None, None], [None])[0]
        return time.perf_counter() - t0, audio[0, 0].numpy()

    run_torch()  # warm-up
    eight_t, torch_t = [], []
    for r in range(args.rounds):
        la = load()
        eight_t.append(run_eight())
        t, ref = run_torch()
        torch_t.append(t)
        print(f"round {r}: eight {eight_t[-1]:.3f} s, PyTorch {t:.3f} s (load {la:.1f})")
    b = (out / "eight.wav").read_bytes()
    i = b.find(b"data")
    got = np.frombuffer(b[i + 8:i + 8 + 4 * len(ref)], dtype="<f4").astype(np.float64)
    nmse = ((got - ref) ** 2).sum() / (ref.astype(np.float64) ** 2).sum()
    me, mt = statistics.median(eight_t), statistics.median(torch_t)
    print(f"{seconds:.0f} s of audio, {args.threads} threads, median of {args.rounds}: "
          f"eight {me:.3f} s (RTF {seconds / me:.1f}x real time), PyTorch {mt:.3f} s "
          f"(RTF {seconds / mt:.1f}x); eight is {mt / me:.2f}x PyTorch's speed; "
          f"NMSE eight vs PyTorch {nmse:.2e}; load {load():.1f}")


if __name__ == "__main__":
    main()
