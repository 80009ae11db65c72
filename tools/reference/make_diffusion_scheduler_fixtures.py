#!/usr/bin/env python3
"""Writes tests/data/diffusion/schedulers.json: timesteps, sigmas, init_noise_sigma and a short
denoising trajectory of each case below, computed by diffusers' own scheduler classes.

Needs diffusers and torch (CPU is enough), which the test suite does not install; run it once in
a separate environment and commit the JSON:

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install diffusers torch numpy
    /tmp/ref/bin/python tools/reference/make_diffusion_scheduler_fixtures.py

The trajectory is the one of tests/reference/diffusion_ref.py (trajectory()): initial latents
and every ancestral noise come from eight's Philox generator (reimplemented there in numpy), fed
to diffusers by replacing its randn_tensor, and the model is the same toy function of the model
input. So the C++ schedulers (tests/runtime/test_diffusion_scheduler.cpp) and the numpy
reference (tests/python/test_diffusion_schedulers.py) can both be held to these numbers.
"""

import json
import os
import sys

import numpy as np
import torch
import diffusers
from diffusers.schedulers import (scheduling_ddim, scheduling_euler_ancestral_discrete,
                                  scheduling_lcm)

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(root, "tests", "reference"))
import diffusion_ref  # noqa: E402

CLASSES = {
    "euler": diffusers.EulerDiscreteScheduler,
    "euler_a": diffusers.EulerAncestralDiscreteScheduler,
    "dpm++2m": diffusers.DPMSolverMultistepScheduler,
    "lcm": diffusers.LCMScheduler,
    "ddim": diffusers.DDIMScheduler,
}

# stabilityai/stable-diffusion-xl-base-1.0's scheduler/scheduler_config.json.
SDXL = {
    "_class_name": "EulerDiscreteScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}


def sdxl(**changes):
    c = dict(SDXL)
    c.update(changes)
    return c


PLAIN = {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02}

# (name, config, steps, seed)
CASES = [
    ("euler", sdxl(), 8, 1),
    ("euler", sdxl(timestep_spacing="linspace", prediction_type="v_prediction"), 7, 2),
    ("euler", sdxl(timestep_spacing="trailing", use_karras_sigmas=True), 6, 3),
    ("euler", sdxl(use_karras_sigmas=True), 30, 4),
    ("euler_a", sdxl(), 8, 5),
    ("euler_a", sdxl(timestep_spacing="trailing", prediction_type="v_prediction"), 5, 6),
    ("dpm++2m", sdxl(), 8, 7),
    ("dpm++2m", sdxl(use_karras_sigmas=True), 9, 8),
    ("dpm++2m", sdxl(timestep_spacing="trailing", prediction_type="v_prediction"), 16, 9),
    ("dpm++2m", sdxl(timestep_spacing="linspace", use_karras_sigmas=True), 20, 10),
    ("dpm++2m", dict(PLAIN, solver_order=1), 5, 11),
    ("lcm", sdxl(), 4, 12),
    ("lcm", sdxl(original_inference_steps=50), 6, 13),
    ("lcm", dict(PLAIN, prediction_type="v_prediction"), 3, 14),
    ("ddim", sdxl(), 8, 15),
    ("ddim", dict(PLAIN, timestep_spacing="linspace", prediction_type="v_prediction", eta=0.5), 7,
     16),
    ("ddim", sdxl(timestep_spacing="trailing"), 5, 17),
]


def run(name, cfg, steps, seed):
    cls = CLASSES[name]
    # As a pipeline switches samplers: from_config keeps the keys the class knows.
    s = cls.from_config({k: v for k, v in cfg.items() if k != "eta"})
    s.set_timesteps(steps)
    rng = diffusion_ref.Rng(seed)

    def randn_tensor(shape, generator=None, device=None, dtype=None, layout=None):
        return torch.from_numpy(rng.normal(tuple(shape))).to(dtype or torch.float32)

    for mod in (scheduling_euler_ancestral_discrete, scheduling_lcm, scheduling_ddim):
        mod.randn_tensor = randn_tensor
    x = (torch.from_numpy(rng.normal(diffusion_ref.SHAPE)).float() * s.init_noise_sigma).float()
    samples, first = [x], None
    for i, t in enumerate(s.timesteps):
        x_in = s.scale_model_input(x, t)
        if first is None:
            first = x_in
        out = torch.from_numpy(diffusion_ref.toy_model(x_in.double().numpy(), i)).float()
        kwargs = {"eta": cfg["eta"]} if name == "ddim" and "eta" in cfg else {}
        x = s.step(out, t, x, **kwargs).prev_sample
        samples.append(x)
    # img2img's start: add_noise on a fresh scheduler at timesteps[steps // 2], x0 and noise drawn
    # from Rng(seed + 1000).
    fresh = cls.from_config({k: v for k, v in cfg.items() if k != "eta"})
    fresh.set_timesteps(steps)
    r2 = diffusion_ref.Rng(seed + 1000)
    x0 = torch.from_numpy(r2.normal(diffusion_ref.SHAPE)).float()
    noise = torch.from_numpy(r2.normal(diffusion_ref.SHAPE)).float()
    k = steps // 2
    noised = fresh.add_noise(x0, noise, fresh.timesteps[k:k + 1])
    sig = [g9(v) for v in s.sigmas] if name in ("euler", "euler_a", "dpm++2m") else []
    # The samples after steps 0, 1, 2 and the last (all of them would make the file large).
    at = sorted({0, 1, 2, 3, len(samples) - 1} & set(range(len(samples))))
    return {
        "noised": [g9(v) for v in noised.double().numpy().ravel()],
        "timesteps": [g9(v) for v in s.timesteps],
        "sigmas": sig,
        "init_noise_sigma": g9(s.init_noise_sigma),
        "first_model_input": [g9(v) for v in first.double().numpy().ravel()],
        "samples_at": at,
        "samples": [[g9(v) for v in samples[k].double().numpy().ravel()] for k in at],
    }


def g9(v):
    """float32 values to 9 significant digits: exact for float32, short in JSON."""
    return float(f"{float(v):.9g}")


def main():
    out = {
        "generator": f"diffusers {diffusers.__version__}, torch {torch.__version__}",
        "shape": list(diffusion_ref.SHAPE),
        "cases": [],
    }
    for name, cfg, steps, seed in CASES:
        case = {"sampler": name, "config": cfg, "steps": steps, "seed": seed}
        case.update(run(name, cfg, steps, seed))
        out["cases"].append(case)
    path = os.path.join(root, "tests", "data", "diffusion", "schedulers.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(out['cases'])} cases to {path}")


if __name__ == "__main__":
    main()
