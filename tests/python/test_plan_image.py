"""`eight plan` on an image pipeline (the tiny random-weight SDXL of tests/python/sdxl_tiny.py):
the stage bill from the safetensors headers with --json, the chosen VAE tile under a RAM budget,
the refusal below the weights, and `eight imagine` following the same plan."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import sdxl_tiny  # noqa: E402

SOURCE = pathlib.Path(os.environ.get("EIGHT_SOURCE_DIR", HERE.parents[1]))
CLI = os.environ.get("EIGHT_CLI", str(SOURCE / "build" / "bin" / "eight"))


def run(*args):
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=600)


def plan(model, *args):
    r = run("plan", model, "--json", "-t", 2, *args)
    assert r.returncode in (0, 1), r.stderr
    p = json.loads(r.stdout)
    assert p["fits"] == (r.returncode == 0)
    return p


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("sdxl")
    sdxl_tiny.write_pipeline(root / "tiny", dtype="f16")
    return root / "tiny"


def test_stage_bill_from_headers(tiny):
    p = plan(tiny, "-W", 512, "-H", 384)
    assert (p["kind"], p["width"], p["height"], p["guided"]) == ("image", 512, 384, True)
    files = {c["name"]: c["bytes"] for c in p["components"]}
    assert set(files) == {"unet", "vae", "text_encoder", "text_encoder_2"}
    for name, size in files.items():
        on_disk = sum(f.stat().st_size for f in (tiny / name).glob("*.safetensors"))
        assert size == on_disk, name
    assert p["weights_mapped"] == sum(files.values())
    assert [s["name"] for s in p["stages"]] == ["text", "denoise", "decode"]
    largest = max(s["bytes"] for s in p["stages"])
    assert p["host_peak"] == p["weights_mapped"] + p["weight_copies"] + p["kernel_scratch"] + largest
    assert sum(b["bytes"] for b in p["cpu"]) == p["host_peak"]
    assert p["vae_tile"] == 0 and p["fits"]
    assert "not planned" in p["gpu"] and p["device"] is None
    # Unguided: the UNet's stage shrinks; a larger image costs more everywhere but the text.
    one = plan(tiny, "-W", 512, "-H", 384, "--cfg-scale", 1)
    assert not one["guided"] and one["stages"][1]["bytes"] < p["stages"][1]["bytes"]
    big = plan(tiny, "-W", 1024, "-H", 768)
    assert big["unet_activations"] > p["unet_activations"]
    assert big["vae_decode"] > p["vae_decode"]


def test_budget_chooses_tiles_then_refuses(tiny):
    whole = plan(tiny, "-W", 1024, "-H", 1024)
    assert whole["vae_tile"] == 0 and whole["stages"][2]["name"] == "decode"
    budget = whole["host_peak"] - 1
    tiled = plan(tiny, "-W", 1024, "-H", 1024, "--ram", budget)
    assert tiled["fits"] and tiled["vae_tile"] > 0 and tiled["vae_overlap"] == tiled["vae_tile"] // 4
    assert tiled["host_peak"] <= budget
    forced = plan(tiny, "-W", 1024, "-H", 1024, "--vae-tile", 16)
    assert forced["vae_tile"] == 16 and forced["vae_decode"] < whole["vae_decode"]
    refused = plan(tiny, "-W", 1024, "-H", 1024, "--ram", whole["weights_mapped"])
    assert not refused["fits"] and any("smaller image" in s for s in refused["suggestions"])
    text = run("plan", tiny, "-W", 1024, "-H", 1024, "--ram", whole["weights_mapped"])
    assert text.returncode == 1 and "does NOT fit" in text.stdout


def test_imagine_follows_the_plan(tiny, tmp_path):
    p = plan(tiny, "-W", 256, "-H", 256)
    out = tmp_path / "a.png"
    r = run("imagine", "-m", tiny, "-p", "a cube", "-W", 256, "-H", 256, "--steps", 1, "-t", 2,
            "--seed", 1, "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout.strip().splitlines()[-1])
    assert j["planned_peak"] == p["host_peak"] and j["vae_tile"] == 0
    r = run("imagine", "-m", tiny, "-p", "a cube", "-W", 256, "-H", 256, "--steps", 1, "-t", 2,
            "-o", out, "--ram", p["weights_mapped"])
    assert r.returncode != 0 and "needs" in r.stderr and "budget" in r.stderr, r.stderr


def test_sdxl_base_sized_bill(tmp_path):
    """SDXL base's real shapes (tools/sdxl_headers.py: real headers, the data a hole in a sparse
    file) planned at 1024x1024: the weights as the files hold them, the whole-image decode as the
    largest stage, tiles under an 8 GiB budget, and a refusal below the weights."""
    out = tmp_path / "sdxl-base"
    subprocess.run([sys.executable, str(SOURCE / "tools" / "sdxl_headers.py"), "--out", str(out),
                    "--dtype", "f16"], check=True)
    p = plan(out, "-W", 1024, "-H", 1024, "-t", 8, "--ram", "64GiB")
    files = {c["name"]: c["bytes"] for c in p["components"]}
    assert 5.13e9 < files["unet"] < 5.14e9 and 1.38e9 < files["text_encoder_2"] < 1.40e9
    assert [s["name"] for s in p["stages"]] == ["text", "denoise", "decode"]
    assert p["fits"] and p["vae_tile"] == 0
    assert p["stages"][2]["bytes"] > p["stages"][1]["bytes"] > p["stages"][0]["bytes"]
    tiled = plan(out, "-W", 1024, "-H", 1024, "-t", 8, "--ram", "8GiB")
    assert tiled["fits"] and tiled["vae_tile"] > 0
    refused = plan(out, "-W", 1024, "-H", 1024, "-t", 8, "--ram", "6GiB")
    assert not refused["fits"] and any("weights alone" in s for s in refused["suggestions"])


def test_device_bill_with_vram(tiny):
    p = plan(tiny, "-W", 256, "-H", 192, "--vram", "1GiB")
    d = p["device"]
    assert d["budget"] == 1 << 30 and d["fits"] and p["fits"]
    assert [s["name"] for s in d["stages"]] == ["text", "denoise", "decode"]
    largest = max(s["bytes"] for s in d["stages"])
    assert d["peak"] == sum(b["bytes"] for b in d["bill"]) == 512 * 2**20 + d["weights"] + largest
    assert p["gpu"].startswith("fits: vulkan:0 needs")
    # A budget below the reserve and the weights: refused with the options.
    small = plan(tiny, "-W", 256, "-H", 192, "--vram", "520MiB")
    assert not small["device"]["fits"] and not small["fits"]
    assert small["gpu"].startswith("does not fit") and small["suggestions"]


def test_sdxl_base_device_bill(tmp_path):
    # SDXL base's real headers (tools/sdxl_headers.py, sparse files): f16 at 768x768 fits an
    # 8 GiB GPU with the VAE in tiles; 1024x1024 guided does not (its UNet forward is 1.26 GiB).
    root = tmp_path / "sdxl-base"
    subprocess.run([sys.executable, str(SOURCE / "tools" / "sdxl_headers.py"), "--out", str(root),
                    "--dtype", "f16"], check=True, capture_output=True, timeout=300)
    p = plan(root, "-W", 768, "-H", 768, "--vram", "8GiB", "--ram", "64GiB")
    d = p["device"]
    assert d["fits"] and d["peak"] <= 8 << 30
    assert 6.2 * 2**30 < d["weights"] < 6.35 * 2**30
    assert p["vae_tile"] > 0
    big = plan(root, "-W", 1024, "-H", 1024, "--vram", "8GiB", "--ram", "64GiB")
    assert not big["device"]["fits"] and "does not fit" in big["gpu"]
    assert any("guidance" in s for s in big["suggestions"])


def test_single_file_and_gguf_are_planned_like_the_folder(tiny, tmp_path):
    """A single file of the same weights plans the same stages as the folder (its mapped bytes are
    the one file's); a GGUF made from it by eight convert plans smaller weights, and with --vram
    the device bill; imagine on the single file reports the plan eight plan printed."""
    single = tmp_path / "tiny.safetensors"
    sdxl_tiny.write_pipeline(tmp_path / "dir", single, "f16")
    folder = plan(tiny, "-W", 256, "-H", 192)
    p = plan(single, "-W", 256, "-H", 192)
    assert [s["bytes"] for s in p["stages"]] == [s["bytes"] for s in folder["stages"]]
    assert p["weights_mapped"] == single.stat().st_size
    r = run("convert", single, "-o", tmp_path / "tiny.gguf", "--type", "q8_0")
    assert r.returncode == 0, r.stderr
    g = plan(tmp_path / "tiny.gguf", "-W", 256, "-H", 192, "--vram", "1GiB")
    assert g["weights_mapped"] == (tmp_path / "tiny.gguf").stat().st_size < p["weights_mapped"]
    assert g["device"] is not None and g["gpu"].startswith("fits")
    r = run("imagine", "-m", single, "-p", "a cat", "-W", 256, "-H", 192, "--steps", 1, "-t", 2,
            "-o", tmp_path / "x.png", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["planned_peak"] == p["host_peak"]
