"""eight's float64 numpy reference of the diffusion schedulers (tests/reference/diffusion_ref.py)
against the numbers diffusers itself computes (tests/data/diffusion/schedulers.json, written by
tools/reference/make_diffusion_scheduler_fixtures.py). The C++ schedulers are held to the same
file by tests/runtime/test_diffusion_scheduler.cpp.

Tolerances: diffusers computes in float32 (betas, sigmas, samples), the reference in float64.
  timesteps: 1e-3 absolute (float32 linspace and Karras timesteps)
  sigmas: 5e-5 relative (diffusers' float32 cumprod puts sigma(t = 0) 1.3e-5 off)
  init_noise_sigma: 1e-5 relative
  model inputs, samples and add_noise: NMSE <= 1e-10 per stored step
"""

import json
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import diffusion_ref  # noqa: E402

FIXTURE = os.path.join(HERE, "..", "data", "diffusion", "schedulers.json")
with open(FIXTURE) as f:
    DATA = json.load(f)


def nmse(got, ref):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    den = float(np.sum(ref * ref))
    return float(np.sum((got - ref) ** 2)) / (den if den > 0 else 1.0)


def case_id(c):
    return f"{c['sampler']}-{c['steps']}-seed{c['seed']}"


@pytest.mark.parametrize("case", DATA["cases"], ids=case_id)
def test_reference_matches_diffusers(case):
    got = diffusion_ref.trajectory(case["sampler"], case["config"], case["steps"], case["seed"])
    assert len(got["timesteps"]) == len(case["timesteps"])
    np.testing.assert_allclose(got["timesteps"], case["timesteps"], rtol=0, atol=1e-3)
    assert len(got["sigmas"]) == len(case["sigmas"])
    if case["sigmas"]:
        np.testing.assert_allclose(got["sigmas"], case["sigmas"], rtol=5e-5, atol=1e-9)
    assert got["init_noise_sigma"] == pytest.approx(case["init_noise_sigma"], rel=1e-5)
    assert nmse(got["first_model_input"], case["first_model_input"]) <= 1e-10
    assert nmse(got["noised"], case["noised"]) <= 1e-10, "add_noise"
    assert got["samples_at"] == case["samples_at"]
    for k, (g, r) in enumerate(zip(got["samples"], case["samples"])):
        e = nmse(g, r)
        assert e <= 1e-10, f"sample after step {case['samples_at'][k]}: NMSE {e:.3g}"


def test_philox_known_answers():
    # Random123's known-answer vectors for philox4x32_10 (kat_vectors).
    f = diffusion_ref.philox4x32_10
    assert f((0, 0, 0, 0), (0, 0)) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    m = 0xFFFFFFFF
    assert f((m, m, m, m), (m, m)) == (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)
    assert f((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0)) == (
        0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)


def test_noise_is_standard_normal_and_counter_based():
    a = diffusion_ref.Rng(7).normal((4, 64, 64))
    assert abs(a.mean()) < 0.02 and abs(a.std() - 1) < 0.02
    # Two draws of 6 use blocks 0-1 and 2-3: the second starts at normal 8 of one long draw.
    r = diffusion_ref.Rng(7)
    first, second = r.normal((6,)), r.normal((6,))
    long = diffusion_ref.Rng(7).normal((16,))
    assert np.array_equal(first, long[:6]) and np.array_equal(second, long[8:14])
