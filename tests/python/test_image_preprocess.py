"""eight's image decoding and CLIP preprocessing (`eight preprocess-image`) against Pillow and
transformers' CLIPImageProcessor, on generated images of odd sizes and aspect ratios in every
format eight reads, with each EXIF orientation. The reference applies EXIF orientation with
PIL.ImageOps.exif_transpose (CLIPImageProcessor itself ignores it) and then runs the processor.

Pass condition: the pixel tensors, un-normalized back to 0..1, agree within 1/255 everywhere
(in practice they are identical: the resampling reproduces PIL's fixed-point arithmetic). JPEG is
the exception only in decoding: stb_image's IDCT rounds differently from libjpeg-turbo's (about 3%
of pixels differ, by at most 3 levels), so for JPEG the preprocessing is checked exactly on the
pixels eight decoded, the decoding (and EXIF rotation) against Pillow's decoder separately, and the
whole chain end to end within 5/255."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

PIL = pytest.importorskip("PIL", reason="SKIPPED: Pillow is not installed (scripts/deps.sh --test)")
from PIL import Image, ImageOps  # noqa: E402

transformers = pytest.importorskip(
    "transformers", reason="SKIPPED: transformers is not installed (scripts/deps.sh --test)")
try:
    from transformers import CLIPImageProcessorPil as Processor  # transformers >= 5: PIL backend
except ImportError:
    from transformers import CLIPImageProcessor as Processor

SOURCE = pathlib.Path(os.environ.get("EIGHT_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
CLI = os.environ.get("EIGHT_CLI", str(SOURCE / "build" / "bin" / "eight"))
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
TOL = 1.0 / 255 + 1e-6

CONFIGS = {
    "vit-l-14": {"size": {"shortest_edge": 224}, "crop_size": {"height": 224, "width": 224}},
    "vit-l-14-336": {"size": {"shortest_edge": 336}, "crop_size": {"height": 336, "width": 336}},
    "odd": {"size": {"shortest_edge": 97}, "crop_size": {"height": 61, "width": 89}},
    "pad": {"size": {"shortest_edge": 40}, "crop_size": {"height": 64, "width": 48}},
}


def need_cli():
    if not os.path.exists(CLI):
        pytest.skip(f"SKIPPED: {CLI} is not built")


def random_image(w, h, seed, mode="RGB"):
    """Smooth gradients plus noise: both the low and high frequencies the filter must get right."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255.0 / max(w - 1, 1), y * 255.0 / max(h - 1, 1),
                     (x + y) * 127.0 / max(w + h - 2, 1)], axis=-1)
    px = np.clip(base + rng.normal(0, 40, size=(h, w, 3)), 0, 255).astype(np.uint8)
    im = Image.fromarray(px, "RGB")
    if mode == "RGBA":
        a = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
        a[: h // 3] = 255
        a[h // 3: h // 2] = 0
        im.putalpha(Image.fromarray(a, "L"))
    elif mode == "LA":
        im = im.convert("L")
        im.putalpha(Image.fromarray(rng.integers(0, 256, size=(h, w), dtype=np.uint8), "L"))
    elif mode != "RGB":
        im = im.convert(mode)
    return im


def exif_bytes(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def reference(path, cfg):
    im = ImageOps.exif_transpose(Image.open(path))
    proc = Processor(**cfg)
    return proc(im, return_tensors="np")["pixel_values"][0]


def ours(tmp_path, path, cfg):
    cfg_path = tmp_path / "preprocessor_config.json"
    cfg_path.write_text(json.dumps(cfg))
    out = tmp_path / "pixels.npy"
    subprocess.run([CLI, "preprocess-image", str(path), "-o", str(out), "--config", str(cfg_path)],
                   check=True, capture_output=True)
    return np.load(out)


def ours_decoded(tmp_path, path):
    out = tmp_path / "decoded.npy"
    subprocess.run([CLI, "preprocess-image", str(path), "-o", str(out), "--decoded"],
                   check=True, capture_output=True)
    return np.load(out)


def compare(tmp_path, path, cfg, label, want=None, tol=TOL):
    got = ours(tmp_path, path, cfg)
    if want is None:
        want = reference(path, cfg)
    assert got.shape == want.shape, f"{label}: shape {got.shape} vs {want.shape}"
    # Back to 0..1 so the tolerance is in pixel levels.
    g = got * STD[:, None, None] + MEAN[:, None, None]
    w = want * STD[:, None, None] + MEAN[:, None, None]
    err = float(np.max(np.abs(g - w)))
    print(f"{label}: shape {got.shape}, max |diff| {err * 255:.3f} / 255")
    assert err <= tol, f"{label}: max |diff| {err * 255:.3f}/255 exceeds {tol * 255:.0f}/255"
    return err


SIZES = [(333, 217), (97, 501), (1023, 769), (224, 224), (225, 223), (64, 48), (401, 7),
         (1, 1), (2001, 1337)]


@pytest.mark.parametrize("w,h", SIZES)
def test_png_sizes(tmp_path, w, h):
    need_cli()
    path = tmp_path / "a.png"
    random_image(w, h, w * 7 + h).save(path, compress_level=1)  # noise compresses slowly
    for name in ("vit-l-14", "odd"):
        compare(tmp_path, path, CONFIGS[name], f"png {w}x{h} {name}")


@pytest.mark.parametrize("name", ["vit-l-14-336", "pad"])
def test_other_configs(tmp_path, name):
    need_cli()
    path = tmp_path / "a.png"
    random_image(517, 389, 3).save(path)
    compare(tmp_path, path, CONFIGS[name], f"png 517x389 {name}")


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P"])
def test_pixel_formats(tmp_path, mode):
    need_cli()
    path = tmp_path / "a.png"
    im = random_image(301, 203, 11, mode)
    if mode == "P":
        im = random_image(301, 203, 11).quantize(64)
        im.info["transparency"] = 5  # one palette entry transparent (tRNS)
        im.save(path, transparency=5)
    else:
        im.save(path)
    compare(tmp_path, path, CONFIGS["vit-l-14"], f"png {mode}")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation(tmp_path, orientation):
    need_cli()
    path = tmp_path / "a.jpg"
    random_image(357, 241, orientation).save(path, quality=90, exif=exif_bytes(orientation))
    cfg = CONFIGS["vit-l-14"]
    # Decoding and rotation: a wrong orientation would differ by tens of levels on average.
    decoded = ours_decoded(tmp_path, path)
    pil = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"), dtype=np.float32)
    assert decoded.shape == pil.shape, f"orientation {orientation}: {decoded.shape} vs {pil.shape}"
    diff = np.abs(decoded - pil)
    print(f"jpeg orientation {orientation}: decoder max |diff| {diff.max():.0f}, "
          f"mean {diff.mean():.4f} levels")
    assert diff.max() <= 4 and diff.mean() < 0.25
    # Preprocessing exactly, on the pixels eight decoded.
    own = Processor(**cfg)(Image.fromarray(decoded.astype(np.uint8)),
                           return_tensors="np")["pixel_values"][0]
    compare(tmp_path, path, cfg, f"jpeg orientation {orientation} (own pixels)", want=own)
    # End to end against Pillow's decoder.
    compare(tmp_path, path, cfg, f"jpeg orientation {orientation} (Pillow's decoder)",
            tol=5.0 / 255 + 1e-6)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_png_and_webp_exif(tmp_path, orientation):
    need_cli()
    im = random_image(190, 263, orientation)
    png = tmp_path / "a.png"
    im.save(png, exif=exif_bytes(orientation))
    compare(tmp_path, png, CONFIGS["vit-l-14"], f"png eXIf orientation {orientation}")
    webp = tmp_path / "a.webp"
    im.save(webp, lossless=True, exif=exif_bytes(orientation))
    compare(tmp_path, webp, CONFIGS["vit-l-14"], f"webp EXIF orientation {orientation}")


@pytest.mark.parametrize("kind", ["webp-lossless", "webp-lossy", "webp-alpha", "bmp", "gif"])
def test_other_formats(tmp_path, kind):
    need_cli()
    im = random_image(311, 177, 5, "RGBA" if kind == "webp-alpha" else "RGB")
    path = tmp_path / ("a.webp" if kind.startswith("webp") else f"a.{kind}")
    if kind == "webp-lossy":
        im.save(path, quality=80)
    elif kind.startswith("webp"):
        im.save(path, lossless=True)
    else:
        im.save(path)
    compare(tmp_path, path, CONFIGS["vit-l-14"], kind)


def test_decoded_pixels_match_pillow(tmp_path):
    """Lossless formats decode to exactly Pillow's pixels (EXIF and alpha applied)."""
    need_cli()
    im = random_image(65, 43, 9, "RGBA")
    cases = {"a.png": {}, "b.webp": {"lossless": True}, "c.png": {"exif": exif_bytes(7)}}
    for name, kw in cases.items():
        path = tmp_path / name
        im.save(path, **kw)
        out = tmp_path / "d.npy"
        subprocess.run([CLI, "preprocess-image", str(path), "-o", str(out), "--decoded"],
                       check=True, capture_output=True)
        got = np.load(out)
        ref = ImageOps.exif_transpose(Image.open(path)).convert("RGBA")
        white = Image.new("RGBA", ref.size, (255, 255, 255, 255))
        want = np.asarray(Image.alpha_composite(white, ref).convert("RGB"), dtype=np.float32)
        assert got.shape == want.shape, name
        assert np.array_equal(got, want), f"{name}: max diff {np.max(np.abs(got - want))}"


def test_bad_images_fail_cleanly(tmp_path):
    need_cli()
    good = tmp_path / "a.jpg"
    random_image(64, 64, 1).save(good)
    data = good.read_bytes()
    cases = {"empty.png": b"", "text.jpg": b"hello, not an image",
             "cut.png": b"\x89PNG\r\n\x1a\n\x00\x00", "trunc.jpg": data[:20]}
    for name, payload in cases.items():
        path = tmp_path / name
        path.write_bytes(payload)
        r = subprocess.run([CLI, "preprocess-image", str(path), "-o", str(tmp_path / "x.npy")],
                           capture_output=True, text=True)
        assert r.returncode != 0 and r.returncode < 128, f"{name}: exit {r.returncode}"
        assert name in r.stderr, f"{name}: the error should name the file: {r.stderr}"
