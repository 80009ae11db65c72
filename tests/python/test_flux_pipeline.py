"""`eight imagine` and `eight serve --image-model` with FLUX.1 on the tiny random-weight
FluxPipeline (tests/data/flux_pipe/), held to diffusers' float32 run committed in
tests/data/flux_ref/ (tools/reference/make_flux_pipeline.py): the final latents after 4 steps
from the given noise (NMSE <= 1e-5) and the decoded image (PSNR >= 46 dB on the 8-bit pixels),
from the diffusers folder and from the single-file transformer (BFL names, ComfyUI prefix) with
--clip-l / --t5xxl / --vae / --tokenizer / --tokenizer-2; bad component files give errors that
name them."""
import base64
import json
import os
import pathlib
import shutil
import sys

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from server_util import ServeProcess  # noqa: E402
from test_sdxl_imagine import nmse, psnr_8bit, read_png, run  # noqa: E402

SOURCE = pathlib.Path(os.environ.get("EIGHT_SOURCE_DIR", HERE.parents[1]))
PIPE = SOURCE / "tests" / "data" / "flux_pipe"
REF = SOURCE / "tests" / "data" / "flux_ref"
FX = json.loads((REF / "fixtures.json").read_text())
SEPARATE = ["--clip-l", PIPE / "text_encoder" / "model.safetensors",
            "--t5xxl", PIPE / "text_encoder_2" / "model.safetensors",
            "--vae", PIPE / "vae", "--tokenizer", PIPE / "tokenizer",
            "--tokenizer-2", PIPE / "tokenizer_2" / "spiece.model"]


def imagine(model, tmp_path, *extra):
    lat, png = tmp_path / "latents.npy", tmp_path / "out.png"
    r = run("imagine", "-m", model, "-p", FX["prompt"], "-W", FX["width"], "-H", FX["height"],
            "--init-noise", REF / "noise.npy", "--save-latents", lat, "-o", png, "--json",
            "--device", "cpu", *extra)
    return np.load(lat), read_png(png)[0], json.loads(r.stdout.strip().splitlines()[-1])


def reference_pixels():
    ref = np.load(REF / "image.npy").astype(np.float64)
    return np.round(np.clip((ref + 1) / 2, 0, 1) * 255).transpose(1, 2, 0)


@pytest.mark.parametrize("layout", ["folder", "separate"])
def test_matches_diffusers(tmp_path, layout):
    if layout == "folder":
        lat, px, j = imagine(PIPE, tmp_path)
    else:
        lat, px, j = imagine(REF / "separate" / "flux1-tiny-comfy.safetensors", tmp_path,
                             *SEPARATE)
    want = np.load(REF / "latents.npy")
    assert lat.shape == want.shape == (16, FX["height"] // 8, FX["width"] // 8)
    err, psnr = nmse(lat, want), psnr_8bit(px, reference_pixels())
    print(f"{layout}: latents NMSE {err:.3g}, image PSNR {psnr:.1f} dB")
    assert err <= 1e-5
    assert psnr >= 46
    assert j["steps"] == 4 and j["sampler"] == "flow_euler" and j["cfg_scale"] == 0


def test_options_change_the_run(tmp_path):
    """--max-sequence-length reaches T5 (fewer pad tokens change the context) and the seed
    drives the noise; --cfg-scale is ignored by schnell."""
    base, _, _ = imagine(PIPE, tmp_path, "--cfg-scale", "7")
    assert nmse(base, np.load(REF / "latents.npy")) <= 1e-5
    short, _, _ = imagine(PIPE, tmp_path, "--max-sequence-length", "32")
    assert nmse(short, base) > 1e-6
    r = run("imagine", "-m", PIPE, "-p", "x", "-W", 32, "-H", 32, "--seed", 3, "--steps", 2,
            "-o", tmp_path / "s.png", "--json", "--device", "cpu")
    assert json.loads(r.stdout.strip().splitlines()[-1])["steps"] == 2


def test_help_documents_flags():
    out = run("imagine", "--help").stdout
    for flag in ["--clip-l", "--t5xxl", "--tokenizer ", "--tokenizer-2", "--max-sequence-length",
                 "--guidance", "FLUX"]:
        assert flag in out, flag


def test_bad_inputs(tmp_path):
    flux = REF / "separate" / "flux1-tiny-comfy.safetensors"
    te1, te2 = PIPE / "text_encoder" / "model.safetensors", PIPE / "text_encoder_2" / "model.safetensors"

    def fails(*args):
        r = run("imagine", "-p", "x", "-W", 32, "-H", 32, "-o", tmp_path / "x.png", "--device",
                "cpu", *args, check=False)
        assert r.returncode != 0 and "Segmentation" not in r.stderr, r.stderr
        return r.stderr

    assert "--clip-l" in fails("-m", flux)
    swapped = [a if a not in (te1, te2) else (te2 if a == te1 else te1) for a in SEPARATE]
    assert "not a CLIP text model" in fails("-m", flux, *swapped)
    no_tok = SEPARATE[:-2]
    (tmp_path / "t5").mkdir()
    shutil.copyfile(te2, tmp_path / "t5" / "t5xxl.safetensors")
    no_tok[3] = tmp_path / "t5" / "t5xxl.safetensors"
    assert "--tokenizer-2" in fails("-m", flux, *no_tok)
    assert "multiples of 16" in fails("-m", PIPE, "-W", 40)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(flux.read_bytes()[:5000])
    err = fails("-m", truncated, *SEPARATE)
    assert "cut.safetensors" in err
    assert "FluxPipeline folder" in fails("-m", PIPE, "--clip-l", te1)
    assert "not FlowMatchEulerDiscreteScheduler" in fails("-m", _with_scheduler(
        tmp_path, {"_class_name": "EulerDiscreteScheduler"}))


def _with_scheduler(tmp_path, config):
    d = tmp_path / "pipe"
    shutil.copytree(PIPE, d)
    (d / "scheduler" / "scheduler_config.json").write_text(json.dumps(config))
    return d


def test_server_generates(tmp_path):
    import requests
    srv = ServeProcess("--image-model", PIPE, "--image-queue", 1)
    try:
        r = requests.post(srv.url + "/v1/images/generations", json={
            "prompt": "a cat", "size": "96x64", "n": 1, "seed": 5,
            "response_format": "b64_json"}, timeout=300)
        assert r.status_code == 200, r.text
        png = tmp_path / "s.png"
        png.write_bytes(base64.b64decode(r.json()["data"][0]["b64_json"]))
        px, text = read_png(png)
        assert px.shape == (64, 96, 3) and "Steps: 4" in text["parameters"]
        assert px.std() > 1  # not a blank image
        assert srv.alive()
    finally:
        srv.stop()


def test_plan(tmp_path):
    """`eight plan DIR -W -H` for a FLUX folder: text, denoise and decode stages, the bill adding
    up, and `eight imagine` following the same plan."""
    r = run("plan", PIPE, "-W", 256, "-H", 192, "-t", 2, "--json")
    p = json.loads(r.stdout)
    assert [s["name"] for s in p["stages"]] == ["text", "denoise", "decode"]
    assert "256 tokens" in p["stages"][0]["why"]
    assert p["host_peak"] == sum(b["bytes"] for b in p["cpu"]) and p["fits"]
    big = json.loads(run("plan", PIPE, "-W", 512, "-H", 512, "-t", 2, "--json").stdout)
    assert big["vae_decode"] > p["vae_decode"] and big["unet_activations"] > p["unet_activations"]
    r = run("imagine", "-m", PIPE, "-p", "x", "-W", 256, "-H", 192, "--steps", 1, "-t", 2,
            "-o", tmp_path / "p.png", "--json", "--device", "cpu")
    assert json.loads(r.stdout.strip().splitlines()[-1])["planned_peak"] == p["host_peak"]
    r = run("plan", PIPE, "-W", 256, "-H", 192, "--ram", "1MiB", "--json", check=False)
    assert r.returncode == 1 and not json.loads(r.stdout)["fits"]
