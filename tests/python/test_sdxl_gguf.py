"""SDXL GGUF files end to end on the tiny random-weight pipeline (tests/python/sdxl_tiny.py):
`eight convert` writes whole-checkpoint GGUFs in stable-diffusion.cpp's layout, `eight imagine`
runs them and a ComfyUI-GGUF style UNet-only file (written here with the gguf package, as
ComfyUI-GGUF's tools/convert.py lays it out) with --base; the latents are held to the f32 single
file's from the same noise."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import sdxl_tiny  # noqa: E402

SOURCE = pathlib.Path(os.environ.get("EIGHT_SOURCE_DIR", HERE.parents[1]))
CLI = os.environ.get("EIGHT_CLI", str(SOURCE / "build" / "bin" / "eight"))
UNET = "model.diffusion_model."


def run(*args, check=True):
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and r.returncode != 0:
        raise AssertionError(f"eight {' '.join(map(str, args))} failed:\n{r.stderr}")
    return r


def nmse(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(((a - b) ** 2).sum() / (b ** 2).sum())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    if not pathlib.Path(CLI).exists():
        pytest.skip(f"SKIPPED: {CLI} is not built")
    root = tmp_path_factory.mktemp("sdxl_gguf")
    sdxl_tiny.write_pipeline(root / "tiny", root / "tiny.safetensors")
    rng = np.random.default_rng(5)
    np.save(root / "noise.npy", rng.standard_normal((4, 8, 12)).astype(np.float32))
    return root


def latents(tiny, model, name, *extra):
    out = tiny / f"{name}.npy"
    run("imagine", "-m", model, "-p", "a red fox in the snow", "-n", "blurry", "-W", 96, "-H", 64,
        "--steps", 3, "--sampler", "euler", "--seed", 1, "--init-noise", tiny / "noise.npy",
        "--save-latents", out, "-o", tiny / f"{name}.png", *extra)
    return np.load(out)


@pytest.fixture(scope="module")
def reference(tiny):
    return latents(tiny, tiny / "tiny.safetensors", "reference")


def convert(tiny, type_name):
    out = tiny / f"tiny-{type_name}.gguf"
    if not out.exists():
        r = run("convert", tiny / "tiny.safetensors", "-o", out, "--type", type_name)
        print(r.stdout.strip())
    return out


def tensor_types(path):
    return {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors}


@pytest.mark.parametrize("type_name,bound", [("f16", 1e-4), ("q8_0", 1e-2), ("q4_k_m", 1e-1)])
def test_converted_checkpoint_runs(tiny, reference, type_name, bound):
    path = convert(tiny, type_name)
    got = latents(tiny, path, f"conv-{type_name}")
    err = nmse(got, reference)
    print(f"{type_name}: {path.stat().st_size} bytes, latents NMSE vs f32 single file {err:.3g}")
    assert err <= bound


def test_converted_types_follow_the_rules(tiny):
    """Names are the single file's (sd.cpp reads them as they are); convolutions and the VAE F16,
    vectors F32, text encoders Q8_0; the tiny UNet's rows (64..640 wide) do not divide into
    Q4_K's 256 and fall back as `eight quantize` does (Q4_K -> Q5_0, Q6_K -> Q8_0)."""
    types = tensor_types(convert(tiny, "q4_k_m"))
    single = sdxl_tiny.read_safetensors(tiny / "tiny.safetensors")
    assert set(types) <= set(single)
    for name, t in types.items():
        shape = single[name].shape
        if len(shape) == 1:
            assert t == "F32", name
        elif len(shape) == 4 or name.startswith("first_stage_model."):
            assert t == "F16", name
        elif name.startswith("conditioner.") and "embedding" not in name \
                and not name.endswith("text_projection"):
            assert t == ("Q8_0" if shape[-1] % 32 == 0 else "F16"), name
        elif name.startswith(UNET) and ".time_embed." not in name and ".label_emb." not in name:
            more = name.endswith(("to_v.weight", "ff.net.2.weight"))
            if shape[-1] % 256 == 0:
                assert t == ("Q6_K" if more else "Q4_K"), name
            else:
                assert t == ("Q8_0" if more else "Q5_0"), name
    f16 = tensor_types(convert(tiny, "f16"))
    assert {t for n, t in f16.items() if len(single[n].shape) > 1} == {"F16"}


def comfy_unet_only(tiny, path, qtype):
    """A UNet-only file as ComfyUI-GGUF's convert.py + quantizer lay it out: the original names
    without model.diffusion_model., general.architecture "sdxl", vectors F32, tensors whose last
    dimension is not a multiple of 256 regrouped into rows of 256 with comfy.gguf.orig_shape."""
    single = sdxl_tiny.read_safetensors(tiny / "tiny.safetensors")
    w = gguf.GGUFWriter(str(path), "sdxl")
    for name, data in single.items():
        if not name.startswith(UNET):
            continue
        key = name[len(UNET):]
        data = np.asarray(data, np.float32)
        if data.ndim == 1 or data.size <= 1024:
            w.add_tensor(key, data, raw_dtype=gguf.GGMLQuantizationType.F32)
            continue
        if data.size % 256 == 0 and data.shape[-1] % 256 != 0:
            w.add_array(f"comfy.gguf.orig_shape.{key}", [int(d) for d in data.shape])
            data = data.reshape(-1, 256)
        try:
            w.add_tensor(key, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        except gguf.QuantError:  # convert.py's fallback
            w.add_tensor(key, data.astype(np.float16), raw_dtype=gguf.GGMLQuantizationType.F16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_unet_only_gguf_with_base(tiny, reference):
    path = comfy_unet_only(tiny, tiny / "unet-q8_0.gguf", gguf.GGMLQuantizationType.Q8_0)
    r = run("imagine", "-m", path, "-p", "x", "-W", 64, "-H", 64, "--steps", 1, check=False)
    assert r.returncode != 0 and "holds only a UNet" in r.stderr and "--base" in r.stderr
    got = latents(tiny, path, "unet-only", "--base", tiny / "tiny.safetensors")
    err = nmse(got, reference)
    print(f"UNet-only Q8_0 (ComfyUI-GGUF layout) + --base: latents NMSE {err:.3g}")
    assert err <= 1e-2
    # The base may be a diffusers folder too (its scheduler then applies: compare only shape).
    assert latents(tiny, path, "unet-only-dir", "--base", tiny / "tiny").shape == got.shape


def test_sdcpp_converted_text_encoder_names(tiny, reference):
    """sd.cpp's --convert-name spelling of the text encoders (HF CLIP names under
    cond_stage_model.transformer. and cond_stage_model.1.transformer., fused in_proj), with
    `sd convert --type q8_0`'s rule: every tensor whose rows divide into blocks becomes Q8_0
    except biases, time_embed/label_emb and embeddings, so norm weights and the VAE's matrices
    arrive quantized and must be decoded at load."""
    src = gguf.GGUFReader(str(convert(tiny, "f16")))
    layer = {"attn.in_proj_weight": "self_attn.in_proj.weight",
             "attn.in_proj_bias": "self_attn.in_proj.bias", "attn.out_proj.": "self_attn.out_proj.",
             "ln_1.": "layer_norm1.", "ln_2.": "layer_norm2.", "mlp.c_fc.": "mlp.fc1.",
             "mlp.c_proj.": "mlp.fc2."}
    fixed = {"token_embedding.weight": "embeddings.token_embedding.weight",
             "positional_embedding": "embeddings.position_embedding.weight",
             "ln_final.weight": "final_layer_norm.weight", "ln_final.bias": "final_layer_norm.bias",
             "text_projection": "text_projection"}

    def rename(name):
        if name.startswith("conditioner.embedders.0.transformer."):
            return "cond_stage_model.transformer." + name.split("transformer.", 1)[1]
        g = "conditioner.embedders.1.model."
        if not name.startswith(g):
            return name
        sub = name[len(g):]
        if sub in fixed:
            return "cond_stage_model.1.transformer.text_model." + fixed[sub]
        n, rest = sub[len("transformer.resblocks."):].split(".", 1)
        for old, new in layer.items():
            if rest.startswith(old):
                rest = new + rest[len(old):]
        return f"cond_stage_model.1.transformer.text_model.encoder.layers.{n}.{rest}"

    path = tiny / "sdcpp-names.gguf"
    w = gguf.GGUFWriter(str(path), "sdxl")
    q8 = gguf.GGMLQuantizationType.Q8_0
    for t in src.tensors:
        shape = [int(d) for d in reversed(t.shape)]
        data = np.asarray(t.data).reshape(shape)
        skip = t.name.endswith(".bias") or any(k in t.name for k in
                                               ("time_embed.", "label_emb.", "embedding"))
        if shape[-1] % 32 == 0 and not skip:
            w.add_tensor(rename(t.name), gguf.quants.quantize(data.astype(np.float32), q8),
                         raw_dtype=q8)
        else:
            w.add_tensor(rename(t.name), data, raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    err = nmse(latents(tiny, path, "sdcpp-names"), reference)
    print(f"sd.cpp names, its q8_0 rule: latents NMSE {err:.3g}")
    assert err <= 1e-2


def test_truncated_and_corrupted_gguf_give_clear_errors(tiny):
    data = convert(tiny, "q8_0").read_bytes()
    cut = tiny / "truncated.gguf"
    cut.write_bytes(data[: len(data) // 2])
    r = run("imagine", "-m", cut, "-p", "x", "--steps", 1, check=False)
    assert r.returncode != 0 and "[gguf]" in r.stderr and "truncated.gguf" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr) < 2000
    bad = tiny / "corrupted.gguf"
    bad.write_bytes(data[:8] + b"\xff" * 8 + data[16:])  # tensor count 2^64 - 1
    r = run("imagine", "-m", bad, "-p", "x", "--steps", 1, check=False)
    assert r.returncode != 0 and "[gguf]" in r.stderr, r.stderr


def test_inspect_reads_the_converted_file(tiny):
    r = run("inspect", convert(tiny, "q8_0"))
    assert "sdxl" in r.stdout and "q8_0" in r.stdout.lower()
