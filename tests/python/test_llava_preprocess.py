"""LLaVA-NeXT anyres preprocessing (`eight preprocess-image --config` with image_grid_pinpoints)
against transformers' LlavaNextImageProcessor (PIL backend), live when transformers is installed,
on generated images of several aspect ratios with the real llava-v1.6 settings (336 px tiles and
pinpoints) and a small odd one. Committed fixtures (tools/reference/make_llava_fixtures.py) check
the same without transformers.

Pass condition: the same tile count and order, and the pixels, un-normalized back to 0..1, within
1/255 everywhere (in practice identical: the PIL bicubic resampling is reproduced exactly)."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

PIL = pytest.importorskip("PIL", reason="SKIPPED: Pillow is not installed (scripts/deps.sh --test)")
from PIL import Image  # noqa: E402

SOURCE = pathlib.Path(os.environ.get("EIGHT_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
CLI = os.environ.get("EIGHT_CLI", str(SOURCE / "build" / "bin" / "eight"))
FIXTURES = SOURCE / "tests" / "data" / "llava"
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
TOL = 1.0 / 255 + 1e-6

PINPOINTS_336 = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
CONFIGS = {
    # llava-hf/llava-v1.6-mistral-7b-hf's preprocessor_config.json
    "llava-v1.6": {"size": {"shortest_edge": 336}, "crop_size": {"height": 336, "width": 336},
                   "image_grid_pinpoints": PINPOINTS_336, "resample": 3,
                   "image_processor_type": "LlavaNextImageProcessor"},
    # odd tile size with pinpoints that are not multiples of it: partial edge tiles
    "odd": {"size": {"shortest_edge": 30}, "crop_size": {"height": 30, "width": 30},
            "image_grid_pinpoints": [[30, 75], [64, 30], [60, 60], [90, 30]]},
}


def need_cli():
    if not os.path.exists(CLI):
        pytest.skip(f"SKIPPED: {CLI} is not built")


def random_image(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255.0 / max(w - 1, 1), y * 255.0 / max(h - 1, 1),
                     (x + y) * 127.0 / max(w + h - 2, 1)], axis=-1)
    px = np.clip(base + rng.normal(0, 40, size=(h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(px, "RGB")


def ours(tmp_path, path, cfg):
    cfg_path = tmp_path / "preprocessor_config.json"
    cfg_path.write_text(json.dumps(cfg))
    out = tmp_path / "pixels.npy"
    r = subprocess.run([CLI, "preprocess-image", str(path), "-o", str(out), "--config",
                        str(cfg_path), "--json"], check=True, capture_output=True, text=True)
    return np.load(out), json.loads(r.stdout)


def levels(pixels):
    """Normalized [n, 3, H, W] back to 0..1."""
    return pixels * STD[None, :, None, None] + MEAN[None, :, None, None]


def check_close(got, want, label):
    assert got.shape == want.shape, f"{label}: shape {got.shape} vs {want.shape}"
    err = float(np.max(np.abs(levels(got) - levels(want))))
    print(f"{label}: shape {got.shape}, max |diff| {err * 255:.3f} / 255")
    assert err <= TOL, f"{label}: max |diff| {err * 255:.3f}/255 exceeds 1/255"


# (width, height): landscape, portrait, very wide, very tall, square, tiny, already a pinpoint
SIZES = [(640, 480), (300, 900), (1200, 290), (97, 501), (336, 336), (5, 3), (672, 336)]


@pytest.mark.parametrize("w,h", SIZES)
@pytest.mark.parametrize("name", ["llava-v1.6", "odd"])
def test_against_processor(tmp_path, w, h, name):
    need_cli()
    transformers = pytest.importorskip(
        "transformers", reason="SKIPPED: transformers is not installed (scripts/deps.sh --test)")
    Processor = getattr(transformers, "LlavaNextImageProcessorPil", None) or \
        transformers.LlavaNextImageProcessor
    path = tmp_path / "a.png"
    random_image(w, h, w * 7 + h).save(path, compress_level=1)
    cfg = CONFIGS[name]
    proc = Processor(**{k: v for k, v in cfg.items() if k != "image_processor_type"})
    want = proc(Image.open(path), return_tensors="np")["pixel_values"][0]
    got, meta = ours(tmp_path, path, cfg)
    rows, cols = meta["grid"]
    bh, bw = meta["best_resolution"]
    tile = cfg["crop_size"]["height"]
    assert rows == -(-bh // tile) and cols == -(-bw // tile)
    check_close(got, want, f"{w}x{h} {name}")


def test_fixtures(tmp_path):
    """The committed processor outputs (no transformers needed)."""
    need_cli()
    meta = json.loads((FIXTURES / "preprocess.json").read_text())
    cfg_path = FIXTURES / "preprocessor_config.json"
    for case in meta["images"]:
        out = tmp_path / "p.npy"
        subprocess.run([CLI, "preprocess-image", str(FIXTURES / case["file"]), "-o", str(out),
                        "--config", str(cfg_path)], check=True, capture_output=True)
        want_levels = np.load(FIXTURES / case["levels"])  # uint8 [n, 3, H, W]: processor * 255
        got = levels(np.load(out))
        assert got.shape == want_levels.shape, case["file"]
        err = float(np.max(np.abs(got * 255 - want_levels)))
        print(f"{case['file']}: max |diff| {err:.3f} / 255")
        assert err <= 1.0 + 1e-3


def test_bad_config(tmp_path):
    need_cli()
    path = tmp_path / "a.png"
    random_image(20, 10, 1).save(path)
    for bad, msg in [([[0, 10]], "outside 1..8192"), ([[10]], "is not [height, width]"),
                     ([], "entries")]:
        cfg = dict(CONFIGS["odd"], image_grid_pinpoints=bad)
        (tmp_path / "c.json").write_text(json.dumps(cfg))
        r = subprocess.run([CLI, "preprocess-image", str(path), "-o", str(tmp_path / "o.npy"),
                            "--config", str(tmp_path / "c.json")], capture_output=True, text=True)
        assert r.returncode != 0 and msg in r.stderr, r.stderr
