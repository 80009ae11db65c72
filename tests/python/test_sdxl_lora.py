"""`eight imagine --lora FILE:0.7` on the tiny SDXL pipeline (sdxl_tiny.py) with the tiny LoRA of
sdxl_tiny_lora.py, held to diffusers' latents with the same LoRA loaded by load_lora_weights and
fused at 0.7 (tests/data/sdxl/latents_lora_*.npy, tools/reference/make_sdxl_lora_fixtures.py).
The kohya file under diffusers' UNet paths (as LCM-LoRA) must give what the original-layout file
gives, and a single file what the folder gives; broken LoRAs fail with the tensor named."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import sdxl_tiny  # noqa: E402
import sdxl_tiny_lora  # noqa: E402

SOURCE = pathlib.Path(os.environ.get("EIGHT_SOURCE_DIR", HERE.parents[1]))
CLI = os.environ.get("EIGHT_CLI", str(SOURCE / "build" / "bin" / "eight"))
DATA = SOURCE / "tests" / "data" / "sdxl"
RUN = json.loads((DATA / "fixtures.json").read_text())["runs"]["euler"]
LORA_FIXTURES = json.loads((DATA / "lora_fixtures.json").read_text())
SCALE = LORA_FIXTURES["scale"]


def nmse(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(((a - b) ** 2).sum() / (b ** 2).sum())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    if not os.path.exists(CLI):
        pytest.skip(f"SKIPPED: {CLI} is not built")
    root = tmp_path_factory.mktemp("sdxl_lora")
    sdxl_tiny.write_pipeline(root / "tiny", root / "tiny.safetensors")
    # The fixture run's scheduler, and a copy with linspace spacing (what single files get).
    for name, spacing in [("euler", None), ("linspace", "linspace")]:
        config = dict(RUN["scheduler_config"])
        if spacing:
            config["timestep_spacing"] = spacing
        shutil.copytree(root / "tiny", root / f"tiny-{name}", copy_function=os.link)
        (root / f"tiny-{name}" / "scheduler" / "scheduler_config.json").unlink()
        (root / f"tiny-{name}" / "scheduler" / "scheduler_config.json").write_text(
            json.dumps(config))
    sdxl_tiny_lora.write_loras(root / "lora")
    return root


def imagine(model, out, *loras, check=True):
    args = [CLI, "imagine", "-m", model, "-p", RUN["prompt"], "--negative-prompt",
            RUN["negative_prompt"], "-W", RUN["width"], "-H", RUN["height"], "--steps",
            RUN["steps"], "--cfg-scale", RUN["guidance_scale"], "--sampler", "euler",
            "--init-noise", DATA / RUN["noise"], "--save-latents", out.with_suffix(".npy"),
            "-o", out.with_suffix(".png"), "--json"]
    for lora in loras:
        args += ["--lora", lora]
    r = subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=600)
    if not check:
        return r
    assert r.returncode == 0, r.stderr
    return np.load(out.with_suffix(".npy")), json.loads(r.stdout)


@pytest.mark.parametrize("file,fixture", [("kohya", "kohya"), ("kohya_diffusers", "kohya"),
                                          ("peft", "peft")])
def test_latents_match_diffusers(tiny, tmp_path, file, fixture):
    latents, out = imagine(tiny / "tiny-euler", tmp_path / "a",
                           f"{tiny}/lora/{file}.safetensors:{SCALE}")
    want = np.load(DATA / LORA_FIXTURES["runs"][fixture]["latents"])
    err = nmse(latents, want)
    print(f"{file}: latents NMSE {err:.3g} vs diffusers")
    assert err <= 1e-4
    # The LoRA changes the result: without it the latents are far from the fixture.
    plain, _ = imagine(tiny / "tiny-euler", tmp_path / "b")
    assert nmse(plain, want) > 1e-2
    assert out["loras"] == [{"name": file, "scale": pytest.approx(SCALE)}]
    text = (tmp_path / "a.png").read_bytes().decode("latin-1")  # tEXt chunks are plain latin-1
    assert f"Lora: {file}:{SCALE:g}" in text


@pytest.mark.parametrize("file", ["kohya", "peft"])
def test_single_file_gives_what_the_folder_gives(tiny, tmp_path, file):
    """text_encoder_2's q/k/v are slices of one fused tensor in a single file: merging writes new
    tensors, and the result equals the folder's."""
    lora = f"{tiny}/lora/{file}.safetensors:{SCALE}"
    a, _ = imagine(tiny / "tiny-linspace", tmp_path / "a", lora)
    b, _ = imagine(tiny / "tiny.safetensors", tmp_path / "b", lora)
    assert nmse(b, a) <= 1e-10


def test_two_loras_add(tiny, tmp_path):
    """kohya at 0.35 twice is the kohya file at 0.7 (both merges are linear in the scale)."""
    half = f"{tiny}/lora/kohya.safetensors:{SCALE / 2}"
    twice, out = imagine(tiny / "tiny-euler", tmp_path / "a", half, half)
    assert nmse(twice, np.load(DATA / LORA_FIXTURES["runs"]["kohya"]["latents"])) <= 1e-4
    assert len(out["loras"]) == 2


def write_lora(path, tensors):
    sdxl_tiny.write_safetensors(path, tensors)
    return path


def lora_error(tiny, tmp_path, tensors):
    path = write_lora(tmp_path / "bad.safetensors", tensors)
    r = imagine(tiny / "tiny", tmp_path / "x", path, check=False)
    assert r.returncode != 0
    return r.stderr


def test_errors_name_the_tensor(tiny, tmp_path):
    good = sdxl_tiny_lora.kohya_tensors(sdxl_tiny_lora.make_lora(), original_layout=True)
    key = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"

    # A module of another model (an SD 1.5 / FLUX name).
    bad = dict(good)
    bad["lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight"] = np.zeros((4, 64), np.float32)
    bad["lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight"] = np.zeros((64, 4), np.float32)
    err = lora_error(tiny, tmp_path, bad)
    assert "lora_unet_double_blocks_0_img_attn_qkv" in err and "match no weight" in err

    # A wrong shape.
    bad = dict(good)
    bad[key + ".lora_down.weight"] = np.zeros((4, 65), np.float32)
    err = lora_error(tiny, tmp_path, bad)
    assert key + ".lora_down.weight" in err and "[64, 64]" in err

    # A missing partner.
    bad = dict(good)
    del bad[key + ".lora_up.weight"]
    err = lora_error(tiny, tmp_path, bad)
    assert key + ".lora_down.weight" in err and "up" in err

    # Rank mismatch between down and up.
    bad = dict(good)
    bad[key + ".lora_up.weight"] = np.zeros((64, 3), np.float32)
    assert key + ".lora_up.weight" in lora_error(tiny, tmp_path, bad)

    # Something that is not LoRA.
    bad = dict(good)
    bad[key + ".hada_w1_a"] = np.zeros((4, 4), np.float32)
    err = lora_error(tiny, tmp_path, bad)
    assert key + ".hada_w1_a" in err and "LoHa" in err

    # Truncated file.
    path = tmp_path / "cut.safetensors"
    data = (tiny / "lora" / "kohya.safetensors").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    r = imagine(tiny / "tiny", tmp_path / "x", path, check=False)
    assert r.returncode != 0 and "cut.safetensors" in r.stderr

    # A file that is not there.
    r = imagine(tiny / "tiny", tmp_path / "x", tmp_path / "none.safetensors", check=False)
    assert r.returncode != 0 and "none.safetensors" in r.stderr
