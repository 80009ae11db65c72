#!/usr/bin/env python3
"""Images per second of `eight tag` against timm/PyTorch on the same WD tagger folder, images and
thread count, interleaved (eight, timm, eight, timm, ...) so both see the same machine load.

    /work/diff-venv/bin/python bench/bench_tagger.py MODEL_DIR IMG... [--threads 2] [--reps 3]

Needs torch, torchvision and timm (not the test suite's). eight's rate is the steady state: the
wall time of tagging 3N images minus that of N images (model load and start-up cancel), divided
by 2N. timm's is measured in process over the same 2N images after a warm-up, with the same
preprocessing (wdv3-timm: white square pad, timm's eval transform, BGR). CPU seconds per image
(user + system, all threads) are reported beside the wall rates: on a shared machine they say
more than wall time. Prints medians and the load average beside them.
"""
import argparse
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config

SOURCE = pathlib.Path(__file__).resolve().parents[1]


def pad_square(img):
    img = img.convert("RGB")
    w, h = img.size
    px = max(w, h)
    canvas = Image.new("RGB", (px, px), (255, 255, 255))
    canvas.paste(img, ((px - w) // 2, (px - h) // 2))
    return canvas


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def eight_seconds(cli, model, images, threads, batch):
    """(wall, CPU) seconds of one `eight tag` run."""
    t, c = time.perf_counter(), children_cpu()
    subprocess.run([cli, "tag", "-m", model, *images, "-t", str(threads), "--batch", str(batch),
                    "--json"], check=True, capture_output=True)
    return time.perf_counter() - t, children_cpu() - c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cli", default=str(SOURCE / "build" / "bin" / "eight"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = timm.create_model("local-dir:" + a.model, pretrained=True).eval()
    transform = create_transform(**resolve_data_config(model.pretrained_cfg, model=model))
    n = len(a.images)
    eight_rates, timm_rates, eight_cpu, timm_cpu = [], [], [], []
    for rep in range(a.reps):
        short = eight_seconds(a.cli, a.model, a.images, a.threads, a.batch)
        long = eight_seconds(a.cli, a.model, a.images * 3, a.threads, a.batch)
        eight_rates.append(2 * n / (long[0] - short[0]))
        eight_cpu.append((long[1] - short[1]) / (2 * n))
        with torch.inference_mode():
            if rep == 0:  # warm-up
                model(torch.stack([transform(pad_square(Image.open(p)))[[2, 1, 0]]
                                   for p in a.images[:1]]))
            t, c = time.perf_counter(), time.process_time()
            for _ in range(2):
                for i in range(0, n, a.batch):
                    x = torch.stack([transform(pad_square(Image.open(p)))[[2, 1, 0]]
                                     for p in a.images[i:i + a.batch]])
                    torch.sigmoid(model(x))
            timm_rates.append(2 * n / (time.perf_counter() - t))
            timm_cpu.append((time.process_time() - c) / (2 * n))
        print(f"rep {rep}: eight {eight_rates[-1]:.3f} img/s {eight_cpu[-1]:.2f} CPU-s/img, "
              f"timm {timm_rates[-1]:.3f} img/s {timm_cpu[-1]:.2f} CPU-s/img, "
              f"load {os.getloadavg()[0]:.1f}", file=sys.stderr)
    med = statistics.median
    e, p = med(eight_rates), med(timm_rates)
    print(f"{pathlib.Path(a.model).name}: {a.threads} threads, batch {a.batch}: eight {e:.3f} "
          f"img/s ({med(eight_cpu):.2f} CPU-s/img), timm {p:.3f} img/s ({med(timm_cpu):.2f} "
          f"CPU-s/img), wall ratio {e / p:.2f}, CPU ratio {med(timm_cpu) / med(eight_cpu):.2f} "
          f"(medians of {a.reps}; load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
