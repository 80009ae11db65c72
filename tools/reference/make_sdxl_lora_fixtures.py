#!/usr/bin/env python3
"""Writes tests/data/sdxl/latents_lora_*.npy and lora_fixtures.json: diffusers' final latents of the
tiny SDXL pipeline (tests/python/sdxl_tiny.py) with the tiny random LoRA of
tests/python/sdxl_tiny_lora.py loaded by pipe.load_lora_weights and fused at scale 0.7, for the
kohya (original-layout names) and the diffusers/PEFT file. Run once with torch, diffusers,
transformers and peft (not in CI):

    /work/diff-venv/bin/python tools/reference/make_sdxl_lora_fixtures.py

The run is the euler run of make_sdxl_fixtures.py (same prompt, negative prompt, cfg, 4 steps,
noise.npy). Before running, every fused weight is checked against numpy's
W + 0.7 * alpha / rank * up @ down, so the fixtures hold diffusers' reading of the files and that
reading is the documented convention. (diffusers 0.42.1 with transformers 5.25 drops a kohya
lora_te1_..._self_attn_q_proj module: its conversion names it to_q_lora and the text encoder
reports the key as unexpected. The check catches that, so the tiny LoRA's CLIP-L attention module
is out_proj, which diffusers reads.)
"""
import json
import pathlib
import sys
import tempfile

import diffusers
import numpy as np
import peft
import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "python"))
import sdxl_tiny  # noqa: E402
import sdxl_tiny_lora  # noqa: E402

DATA = ROOT / "tests" / "data" / "sdxl"
SCALE = 0.7


def check_fused(pipe, base_weights, lora, alpha_of):
    parts = {"unet": pipe.unet, "text_encoder": pipe.text_encoder,
             "text_encoder_2": pipe.text_encoder_2}
    for component, module, down, up in lora:
        params = dict(parts[component].named_parameters())
        name = module + ".weight"
        if name not in params:  # transformers 5 names CLIPTextModel's weights without text_model.
            name = name.removeprefix("text_model.")
        got = params[name].detach().numpy()
        w = base_weights[component][module + ".weight"].astype(np.float64)
        rank = down.shape[0]
        delta = up.reshape(up.shape[0], rank).astype(np.float64) @ down.reshape(rank, -1)
        want = w + SCALE * alpha_of(rank) / rank * delta.reshape(w.shape)
        err = np.abs(got - want).max()
        assert err < 1e-5, f"{component} {module}: fused weight off by {err}"


def main():
    fixtures = json.loads((DATA / "fixtures.json").read_text())
    run = fixtures["runs"]["euler"]
    noise = np.load(DATA / run["noise"])
    lora = sdxl_tiny_lora.make_lora()
    base = sdxl_tiny.make_weights(sdxl_tiny.load_manifest())
    out = {"scale": SCALE, "run": "euler (fixtures.json)", "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        sdxl_tiny.write_pipeline(tmp / "tiny")
        files = sdxl_tiny_lora.write_loras(tmp / "lora")
        for name, alpha_of in [("kohya", lambda r: sdxl_tiny_lora.ALPHA),
                               ("peft", lambda r: r)]:
            pipe = StableDiffusionXLPipeline.from_pretrained(str(tmp / "tiny"),
                                                             torch_dtype=torch.float32)
            pipe.scheduler = EulerDiscreteScheduler.from_config(run["scheduler_config"])
            pipe.set_progress_bar_config(disable=True)
            pipe.load_lora_weights(str(files[name]))
            pipe.fuse_lora(lora_scale=SCALE)
            pipe.unload_lora_weights()  # keeps the fused weights, drops the adapter layers
            check_fused(pipe, base, lora, alpha_of)
            with torch.no_grad():
                lat = pipe(prompt=run["prompt"], negative_prompt=run["negative_prompt"],
                           height=run["height"], width=run["width"],
                           num_inference_steps=run["steps"], guidance_scale=run["guidance_scale"],
                           latents=torch.from_numpy(noise[None]).clone(),
                           output_type="latent").images
            path = f"latents_lora_{name}.npy"
            np.save(DATA / path, np.ascontiguousarray(lat.float().numpy()[0], np.float32))
            out["runs"][name] = {"file": f"{name}.safetensors (sdxl_tiny_lora.py)",
                                 "latents": path}
    out["generator"] = (f"diffusers {diffusers.__version__}, peft {peft.__version__}, torch "
                        f"{torch.__version__}; tools/reference/make_sdxl_lora_fixtures.py")
    (DATA / "lora_fixtures.json").write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print("wrote", ", ".join(r["latents"] for r in out["runs"].values()))


if __name__ == "__main__":
    main()
