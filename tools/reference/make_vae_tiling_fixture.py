#!/usr/bin/env python3
"""Writes diffusers' tiled VAE decode and encode of the tiny SDXL pipeline to tests/data/sdxl/.

Needs torch and diffusers (CPU is enough), which the test suite does not install; run it once in a
separate environment and commit what it writes:

    /work/diff-venv/bin/python tools/reference/make_vae_tiling_fixture.py

The VAE is the one tests/python/sdxl_tiny.py writes (numpy, deterministic weights). Its inputs
are those of the untiled fixtures (make_sdxl_fixtures.py): latents_euler.npy / scaling_factor
for decode, vae_decode_image.npy clamped to [-1, 1] for encode. enable_tiling() with
tile_latent_min_size 4 and tile_sample_min_size 32 (instead of sample_size's 8 and 64) makes the
8 x 12 latent 3 x 4 overlapping tiles, stepped by int(4 * 0.75) = 3 latent pixels, blended over
int(32 * 0.25) = 8 pixels (encode: over int(4 * 0.25) = 1 latent pixel): in eight's terms
vae::Tiles{.tile = 4, .overlap = 1}.
"""
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import torch
from diffusers import AutoencoderKL

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "sdxl"
TILE_LATENT, TILE_SAMPLE = 4, 32


def main():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(ROOT / "tests" / "python" / "sdxl_tiny.py"), "--out", tmp],
                       check=True)
        vae = AutoencoderKL.from_pretrained(pathlib.Path(tmp) / "vae").eval()
    vae.enable_tiling()
    vae.tile_latent_min_size = TILE_LATENT
    vae.tile_sample_min_size = TILE_SAMPLE
    latents = torch.from_numpy(np.load(DATA / "latents_euler.npy"))[None]
    image = torch.from_numpy(np.load(DATA / "vae_decode_image.npy")).clamp(-1, 1)
    with torch.no_grad():
        decoded = vae.decode(latents / vae.config.scaling_factor).sample
        posterior = vae.encode(image).latent_dist
    out = {}
    for name, t in [("vae_tiled_decode_image", decoded), ("vae_tiled_encode_mean", posterior.mean),
                    ("vae_tiled_encode_std", posterior.std)]:
        np.save(DATA / f"{name}.npy", t.numpy().astype(np.float32))
        out[name] = list(t.shape)
    # Beside fixtures.json (which make_sdxl_fixtures.py rewrites whole), not in it.
    about = {"generator": "tools/reference/make_vae_tiling_fixture.py",
             "tile_latent_min_size": TILE_LATENT, "tile_sample_min_size": TILE_SAMPLE,
             "tile_overlap_factor": vae.tile_overlap_factor,
             "inputs_note": "as vae_decode and vae_encode in fixtures.json", "shapes": out}
    (DATA / "vae_tiled.json").write_text(json.dumps(about, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
