"""Shared by the CLIP application tests: a random-weight checkpoint (tests/reference/
make_random_clip.py), test images, and `eight serve --clip` on a free port."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from server_util import ServeProcess  # noqa: E402

SOURCE = pathlib.Path(os.environ.get("EIGHT_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
CLI = os.environ.get("EIGHT_CLI", str(SOURCE / "build" / "bin" / "eight"))
sys.path.insert(0, str(SOURCE / "tests" / "reference"))


def need_cli():
    if not os.path.exists(CLI):
        pytest.skip(f"SKIPPED: {CLI} is not built")


def make_model(out_dir, preset="tiny", seed=3):
    from make_random_clip import make_checkpoint  # noqa: E402  (the test reference)
    make_checkpoint(str(out_dir), preset=preset, dtype="F32", seed=seed)
    return pathlib.Path(out_dir)


def logit_scale(model_dir):
    from safetensors.numpy import load_file
    return float(load_file(str(pathlib.Path(model_dir) / "model.safetensors"))["logit_scale"])


def write_images(folder, n, seed=0):
    """n small random images (PNG and JPEG, odd sizes) under folder/ and folder/sub/."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        sub = pathlib.Path(folder) / ("sub" if i % 2 else "")
        sub.mkdir(parents=True, exist_ok=True)
        px = (rng.random((40 + 7 * i, 55 + 3 * i, 3)) * 255).astype(np.uint8)
        p = sub / (f"img{i}.png" if i % 3 else f"img{i}.jpg")
        Image.fromarray(px).save(p)
        paths.append(p)
    return paths


def run(*args, check=True):
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"eight {' '.join(map(str, args))} failed ({r.returncode}):\n"
                             f"{r.stderr}")
    return r


class ClipServer(ServeProcess):
    """`eight serve --clip MODEL` (plus any extra arguments) on a free loopback port."""
