#!/usr/bin/env python3
"""DeepBooru at 512 px on the CPU: eight (`eight tag`) against PyTorch running the same network
(tools/reference/make_deepbooru_fixtures.py's module, full widths) on the same thread count.

Needs torch (run with /work/diff-venv/bin/python) and a full-size model, e.g. random weights:

    /work/diff-venv/bin/python tools/reference/make_deepbooru_fixtures.py --full /tmp/db/full.pt
    /work/diff-venv/bin/python bench/bench_deepbooru.py --model /tmp/db/full.pt --threads 2

eight's per-image time is the slope between a run over 1 image and one over N+1 (so loading the
file and starting the process are left out); PyTorch's is model(x) alone. The runs alternate
(eight, PyTorch, eight, ...) and medians are printed with the load average, as wall time and as
CPU time (all threads), the fairer measure on a shared machine. The probabilities of
both are compared too (NMSE).
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import make_deepbooru_fixtures as ref  # noqa: E402


def children_cpu():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def eight_run(cli, model, images, threads):
    """(wall seconds, CPU seconds, JSON output) of one `eight tag` run."""
    t, c = time.perf_counter(), children_cpu()
    r = subprocess.run([cli, "tag", "-m", model, *images, "-t", str(threads), "--json",
                        "--threshold", "0", "--batch", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return time.perf_counter() - t, children_cpu() - c, json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=3, help="N extra images in eight's long run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "bin", "eight"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sd = torch.load(args.model, map_location="cpu")
    tags = sd.pop("tags")
    net = ref.TinyDeepDanbooru(1, len(tags)).eval()
    net.load_state_dict(sd)
    src = os.path.join(ROOT, "tests", "data", "deepbooru", "wide.png")
    x = torch.from_numpy(ref.pixels(Image.open(src)))
    tmp = tempfile.mkdtemp()
    images = []
    for i in range(args.images + 1):
        images.append(os.path.join(tmp, f"{i}.png"))
        shutil.copy(src, images[-1])
    eight_s, torch_s, eight_cpu, torch_cpu = [], [], [], []
    with torch.no_grad():
        net(x)  # warm-up
        for _ in range(args.rounds):
            t1, c1, out = eight_run(args.cli, args.model, images[:1], args.threads)
            tn, cn, _ = eight_run(args.cli, args.model, images, args.threads)
            eight_s.append((tn - t1) / args.images)
            eight_cpu.append((cn - c1) / args.images)
            t, c = time.perf_counter(), time.process_time()
            p = net(x)[0].numpy()
            torch_s.append(time.perf_counter() - t)
            torch_cpu.append(time.process_time() - c)
    got = {t["name"]: t["score"] for t in out[0]["general"]}
    got.update(out[0]["rating"])
    g = np.array([got.get(t, 0.0) for t in tags])  # 0 when not above 0
    nmse = float(np.sum((g - p) ** 2) / np.sum(p ** 2))
    shutil.rmtree(tmp)
    e, t = statistics.median(eight_s), statistics.median(torch_s)
    print(f"threads {args.threads}, load {os.getloadavg()[0]:.1f}, torch {torch.__version__}")
    print(f"eight   {e:.3f} s/image ({1 / e:.2f} images/s)  runs {[round(v, 3) for v in eight_s]}")
    print(f"PyTorch {t:.3f} s/image ({1 / t:.2f} images/s)  runs {[round(v, 3) for v in torch_s]}")
    ec, tc = statistics.median(eight_cpu), statistics.median(torch_cpu)
    print(f"CPU seconds per image (all threads; fairer when the machine is shared): eight {ec:.3f},"
          f" PyTorch {tc:.3f}")
    print(f"eight / PyTorch speed: wall {t / e:.2f}x, CPU {tc / ec:.2f}x; probabilities NMSE "
          f"{nmse:.2e}")


if __name__ == "__main__":
    main()
