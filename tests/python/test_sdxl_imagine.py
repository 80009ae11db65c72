"""`eight imagine` and `eight serve --image-model` end to end on the tiny random-weight SDXL
pipeline (tests/python/sdxl_tiny.py), held to diffusers' outputs committed in tests/data/sdxl/
(tools/reference/make_sdxl_fixtures.py): final latents of euler, dpm++2m (Karras) and lcm from the
same initial noise, and the decoded image. The single file of the same weights must give what the
folder gives."""
import base64
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from server_util import ServeProcess  # noqa: E402
import sdxl_tiny  # noqa: E402

SOURCE = pathlib.Path(os.environ.get("EIGHT_SOURCE_DIR", HERE.parents[1]))
CLI = os.environ.get("EIGHT_CLI", str(SOURCE / "build" / "bin" / "eight"))
DATA = SOURCE / "tests" / "data" / "sdxl"
FIXTURES = json.loads((DATA / "fixtures.json").read_text())


def run(*args, check=True):
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and r.returncode != 0:
        raise AssertionError(f"eight {' '.join(map(str, args))} failed:\n{r.stderr}")
    return r


def nmse(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(((a - b) ** 2).sum() / (b ** 2).sum())


def psnr_8bit(a, b):
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def read_png(path):
    """(pixels [H, W, 3] uint8, {keyword: text}) with a reader of our own: every filter type,
    CRCs checked, so the file is checked independently of the image library eight uses."""
    data = pathlib.Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, text, w, h = 8, b"", {}, 0, 0
    while at < len(data):
        (n,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + n]
        assert struct.unpack(">I", data[at + 8 + n:at + 12 + n])[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", body[:10])
            assert (depth, color) == (8, 2), "8-bit RGB"
        elif kind == b"IDAT":
            idat += body
        elif kind == b"tEXt":
            k, v = body.split(b"\0", 1)
            text[k.decode("latin-1")] = v.decode("latin-1")
        at += 12 + n
    raw, row = zlib.decompress(idat), w * 3
    out = np.zeros((h, row), np.int64)
    prev = np.zeros(row, np.int64)
    for y in range(h):
        f = raw[y * (row + 1)]
        line = np.frombuffer(raw, np.uint8, row, y * (row + 1) + 1).astype(np.int64)
        cur = np.zeros(row, np.int64)
        for x in range(row):
            a = cur[x - 3] if x >= 3 else 0
            b, c = prev[x], (prev[x - 3] if x >= 3 else 0)
            pred = [0, a, b, (a + b) // 2, 0][f]
            if f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            cur[x] = (line[x] + pred) & 255
        out[y], prev = cur, cur
    return out.reshape(h, w, 3).astype(np.uint8), text


def to_8bit(image):
    """diffusers' postprocess: [1, 3, H, W] in [-1, 1] -> [H, W, 3] uint8."""
    x = np.clip(np.asarray(image, np.float64)[0].transpose(1, 2, 0) / 2 + 0.5, 0, 1)
    return np.round(x * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    if not os.path.exists(CLI):
        pytest.skip(f"SKIPPED: {CLI} is not built")
    root = tmp_path_factory.mktemp("sdxl")
    folder = sdxl_tiny.write_pipeline(root / "tiny", root / "tiny.safetensors")
    return root


def with_scheduler(tiny, name, config):
    """A copy of the folder (weights linked, not copied) with another scheduler_config.json."""
    out = tiny / f"tiny-{name}"
    if not out.exists():
        shutil.copytree(tiny / "tiny", out, copy_function=os.link)
        (out / "scheduler" / "scheduler_config.json").unlink()
        (out / "scheduler" / "scheduler_config.json").write_text(json.dumps(config))
    return out


def imagine(model, tmp_path, run_name, *extra):
    fx = FIXTURES["runs"][run_name]
    lat, png = tmp_path / f"{run_name}.npy", tmp_path / f"{run_name}.png"
    args = ["imagine", "-m", model, "-p", fx["prompt"], "-W", fx["width"], "-H", fx["height"],
            "--steps", fx["steps"], "--cfg-scale", fx["guidance_scale"],
            "--init-noise", DATA / fx["noise"], "--save-latents", lat, "-o", png, "--json", *extra]
    if fx["negative_prompt"]:
        args += ["--negative-prompt", fx["negative_prompt"]]
    out = json.loads(run(*args).stdout)
    return np.load(lat), png, out


@pytest.mark.parametrize("run_name", ["euler", "dpmpp2m", "lcm"])
def test_latents_match_diffusers(tiny, tmp_path, run_name):
    fx = FIXTURES["runs"][run_name]
    model = with_scheduler(tiny, run_name, fx["scheduler_config"])
    # lcm draws noise between steps: seed 0's stream 1 is what the fixture's noise came from.
    latents, _, out = imagine(model, tmp_path, run_name, "--seed", 0)
    want = np.load(DATA / fx["latents"]).reshape(latents.shape)
    assert latents.dtype == np.float32 and latents.shape == (4, fx["height"] // 8, fx["width"] // 8)
    err = nmse(latents, want)
    print(f"{run_name}: latents NMSE {err:.3g}")
    assert err <= 1e-4
    assert out["steps"] == fx["steps"] and out["seed"] == 0


def test_image_matches_diffusers_and_carries_parameters(tiny, tmp_path):
    fx = FIXTURES["runs"]["euler"]
    _, png, out = imagine(with_scheduler(tiny, "euler", fx["scheduler_config"]), tmp_path, "euler",
                          "--seed", 7)
    pixels, text = read_png(png)
    want = to_8bit(np.load(DATA / "vae_decode_image.npy"))
    assert pixels.shape == want.shape
    p = psnr_8bit(pixels, want)
    print(f"euler image PSNR {p:.1f} dB")
    assert p >= 40
    params = text["parameters"]
    assert params.startswith(fx["prompt"] + "\nNegative prompt: " + fx["negative_prompt"] + "\n")
    for part in ["Steps: 4", "Sampler: euler", "CFG scale: 5", "Seed: 7", "Size: 96x64"]:
        assert part in params
    assert out["output"] == str(png)
    assert {"load_s", "text_s", "denoise_s", "s_per_step", "decode_s"} <= set(out["timings"])


def test_single_file_gives_what_the_folder_gives(tiny, tmp_path):
    """A single file has no scheduler config: eight's single-file euler is diffusers' euler with
    SDXL's betas and linspace spacing, so a folder with that config must give the same latents."""
    config = dict(FIXTURES["runs"]["euler"]["scheduler_config"], timestep_spacing="linspace")
    folder = with_scheduler(tiny, "linspace", config)
    a, png_a, _ = imagine(folder, tmp_path, "euler", "--seed", 1, "--sampler", "euler")
    b, png_b, _ = imagine(tiny / "tiny.safetensors", tmp_path / "..", "euler", "--seed", 1,
                          "--sampler", "euler")
    assert nmse(b, a) <= 1e-10
    assert psnr_8bit(read_png(png_b)[0], read_png(png_a)[0]) >= 40
    # A1111's original model hash: sha256 of the 64 KiB at 1 MiB, 8 hex digits.
    import hashlib
    blob = (tiny / "tiny.safetensors").read_bytes()[0x100000:0x110000]
    want = hashlib.sha256(blob).hexdigest()[:8]
    assert f"Model hash: {want}, Model: tiny.safetensors" in read_png(png_b)[1]["parameters"]


def test_separate_vae_file(tiny, tmp_path):
    """--vae with the folder's own VAE (diffusers names) and with it under the original names."""
    fx = FIXTURES["runs"]["euler"]
    folder = with_scheduler(tiny, "euler", fx["scheduler_config"])
    base, png, _ = imagine(folder, tmp_path, "euler", "--seed", 1)
    vae = tiny / "tiny" / "vae" / "diffusion_pytorch_model.safetensors"
    _, png2, _ = imagine(folder, tmp_path / "..", "euler", "--seed", 1, "--vae", vae)
    assert psnr_8bit(read_png(png2)[0], read_png(png)[0]) == float("inf")
    single = sdxl_tiny.read_safetensors(tiny / "tiny.safetensors")
    orig = {k[len("first_stage_model."):]: v for k, v in single.items()
            if k.startswith("first_stage_model.")}
    sdxl_tiny.write_safetensors(tmp_path / "vae-orig.safetensors", orig, "F32")
    _, png3, _ = imagine(folder, tmp_path, "euler", "--seed", 1, "--vae",
                         tmp_path / "vae-orig.safetensors")
    assert psnr_8bit(read_png(png3)[0], read_png(png)[0]) == float("inf")


def test_seed_is_reproducible_and_threads_do_not_matter(tiny, tmp_path):
    args = ["imagine", "-m", tiny / "tiny.safetensors", "-p", "a red fox", "-W", 64, "-H", 64,
            "--steps", 3, "--seed", 42, "--sampler", "euler_a", "--json"]
    run(*args, "-o", tmp_path / "a.png", "--save-latents", tmp_path / "a.npy", "-t", 1)
    run(*args, "-o", tmp_path / "b.png", "--save-latents", tmp_path / "b.npy", "-t", 2)
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    run(*args[:-3], 43, "--json", "-o", tmp_path / "c.png", "--save-latents", tmp_path / "c.npy")
    assert not np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "c.npy"))


def test_img2img_runs_part_of_the_schedule(tiny, tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    out = json.loads(run("imagine", "-m", tiny / "tiny", "-p", "a cat", "--init-image",
                         tmp_path / "in.png", "--strength", 0.5, "--steps", 4, "--seed", 3,
                         "-o", tmp_path / "out.png", "--json").stdout)
    assert (out["width"], out["height"]) == (96, 64)
    pixels, text = read_png(tmp_path / "out.png")
    assert pixels.shape == (64, 96, 3) and "Denoising strength: 0.5" in text["parameters"]


@pytest.mark.parametrize("args, message", [
    (["-W", 100], "multiples of 32"),
    (["--sampler", "plms"], "plms"),
    (["--init-noise", "WRONG_SHAPE"], "initial noise has shape"),
    (["--steps", -1], "steps"),
])
def test_bad_requests_are_refused_clearly(tiny, tmp_path, args, message):
    np.save(tmp_path / "wrong.npy", np.zeros((4, 5, 5), np.float32))
    args = [tmp_path / "wrong.npy" if a == "WRONG_SHAPE" else a for a in args]
    r = run("imagine", "-m", tiny / "tiny", "-p", "a cat", "-o", tmp_path / "x.png", *args,
            check=False)
    assert r.returncode != 0 and message in r.stderr, r.stderr
    assert not (tmp_path / "x.png").exists()


def test_missing_and_foreign_models_are_named(tmp_path):
    if not os.path.exists(CLI):
        pytest.skip(f"SKIPPED: {CLI} is not built")
    r = run("imagine", "-m", tmp_path / "nope.safetensors", "-p", "x", check=False)
    assert r.returncode != 0 and "nope.safetensors" in r.stderr
    sdxl_tiny.write_safetensors(tmp_path / "other.safetensors",
                                {"w": np.zeros((2, 2), np.float32)}, "F32")
    r = run("imagine", "-m", tmp_path / "other.safetensors", "-p", "x", check=False)
    assert r.returncode != 0 and "not an SDXL checkpoint" in r.stderr


def test_server_endpoints(tiny):
    import requests
    srv = ServeProcess("--image-model", tiny / "tiny.safetensors", "--image-queue", 1)
    try:
        r = requests.post(srv.url + "/v1/images/generations", json={
            "prompt": "a cat", "size": "96x64", "n": 2, "steps": 2, "seed": 5,
            "response_format": "b64_json"}, timeout=300)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert len(data) == 2
        imgs = [read_png(_save(base64.b64decode(d["b64_json"]), tiny / f"s{i}.png"))
                for i, d in enumerate(data)]
        assert imgs[0][0].shape == (64, 96, 3)
        assert "Seed: 5" in imgs[0][1]["parameters"] and "Seed: 6" in imgs[1][1]["parameters"]
        r = requests.post(srv.url + "/sdapi/v1/txt2img", json={
            "prompt": "a cat", "width": 64, "height": 64, "steps": 2, "seed": 9,
            "sampler_name": "Euler a", "batch_size": 1, "cfg_scale": 1}, timeout=300)
        assert r.status_code == 200, r.text
        j = r.json()
        assert len(j["images"]) == 1 and json.loads(j["info"])["seed"] == 9
        assert json.loads(j["info"])["sampler_name"] == "euler_a"
        for bad, field in [({"prompt": ""}, "prompt"), ({"prompt": "x", "size": "big"}, "size"),
                           ({"prompt": "x", "n": 99}, "n"), ({"prompt": "x", "steps": "4"}, "steps")]:
            r = requests.post(srv.url + "/v1/images/generations", json=bad, timeout=60)
            assert r.status_code == 400 and r.json()["error"]["param"] == field, r.text
        r = requests.post(srv.url + "/v1/images/generations", data="{not json", timeout=60)
        assert r.status_code == 400
        assert srv.alive()
    finally:
        srv.stop()


def _save(data, path):
    pathlib.Path(path).write_bytes(data)
    return path


@pytest.mark.parametrize("dtype, bound", [("f16", 1e-4), ("bf16", 1e-3)])
def test_half_precision_single_files(tiny, tmp_path, dtype, bound):
    """F16 and BF16 single files (as Stability and fine-tunes ship them) against the f32 folder's
    diffusers latents, with the same scheduler config."""
    fx = FIXTURES["runs"]["euler"]
    half = tmp_path / f"tiny-{dtype}.safetensors"
    sdxl_tiny.write_pipeline(tmp_path / f"dir-{dtype}", half, dtype)
    config = dict(fx["scheduler_config"], timestep_spacing="linspace")
    want, _, _ = imagine(with_scheduler(tiny, "linspace", config), tmp_path, "euler", "--seed", 1,
                         "--sampler", "euler")
    got, _, _ = imagine(half, tmp_path, "euler", "--seed", 1, "--sampler", "euler")
    err = nmse(got, want)
    print(f"{dtype} single file: latents NMSE {err:.3g} against f32")
    assert err <= bound


@pytest.fixture(scope="module")
def lavapipe():
    r = run("devices", "--json", check=False)
    if r.returncode == 0:
        for d in json.loads(r.stdout)["devices"]:
            if "llvmpipe" in d["name"]:
                return f"vulkan:{d['index']}"
    pytest.skip("SKIPPED: no lavapipe (llvmpipe) Vulkan device; install mesa-vulkan-drivers")


def test_on_a_vulkan_device_matches_diffusers(tiny, tmp_path, lavapipe):
    """The same euler run with the models on lavapipe: held to diffusers like the CPU run."""
    fx = FIXTURES["runs"]["euler"]
    latents, png, out = imagine(with_scheduler(tiny, "euler", fx["scheduler_config"]), tmp_path,
                                "euler", "--seed", 0, "--device", lavapipe)
    assert out["device"] == lavapipe
    err = nmse(latents, np.load(DATA / fx["latents"]).reshape(latents.shape))
    p = psnr_8bit(read_png(png)[0], to_8bit(np.load(DATA / "vae_decode_image.npy")))
    print(f"euler on {lavapipe}: latents NMSE {err:.3g}, image PSNR {p:.1f} dB")
    assert err <= 1e-4 and p >= 40
