#!/usr/bin/env python3
"""MAGNeT decoding-step speed: eight vs audiocraft (PyTorch) on the CPU, same threads, interleaved.

Builds a MagnetLMModel shaped like magnet-small (dim 1024, 16 heads, FFN 4096, 4 codebooks of
2048, t5-base width 768) with --layers layers of random weights (small has 24; the time per layer
is what scales) through tools/reference/make_magnet.py's audiocraft import, saves it as an
exported state_dict.bin, and times one decoding step (the LM on the CFG batch of 2 x 498 frames):
  eight:   `eight music -p ... --steps 1,1,1,1` (its logged decoding time / 4 steps: stage 0 with
           full attention, stages 1-3 restricted; sampling included)
  PyTorch: model(codes, [], conditions, stage=s) for s = 0..3 (the forward only), float32,
           torch.set_num_threads(--threads)
and extrapolates the real-time factor of 10 s of music with steps [20, 10, 10, 10] for 24 layers.
Run with /work/diff-venv/bin/python (torch, einops, omegaconf) and AUDIOCRAFT_SRC set as for
make_magnet.py.
"""
import argparse
import gzip
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import make_magnet  # noqa: E402


def build(tmp, layers):
    from omegaconf import OmegaConf
    MagnetLMModel = make_magnet.import_audiocraft()
    torch.manual_seed(0)
    dim, heads, card = 1024, 16, 2048
    model = MagnetLMModel(
        pattern_provider=None, condition_provider=make_magnet.ConditioningProvider(768, dim),
        fuser=make_magnet.ConditionFuser(), n_q=4, card=card, dim=dim, num_heads=heads,
        num_layers=layers, hidden_scale=4, norm="layer_norm", norm_first=True, bias_proj=False,
        bias_ff=False, bias_attn=False, activation="gelu", causal=False, custom=True,
        cross_attention=True, dropout=0.0, subcodes_context=5, compression_model_framerate=50,
        segment_duration=10, span_len=3, device="cpu", dtype=torch.float32,
        weight_init="gaussian", depthwise_init="current").eval()
    cfg = OmegaConf.to_yaml(OmegaConf.create(
        make_magnet.CFG.format(dim=dim, heads=heads, layers=layers, card=card)))
    d = os.path.join(tmp, "magnet")
    os.makedirs(d)
    torch.save({"best_state": model.state_dict(), "xp.cfg": cfg, "version": "1.3.0",
                "exported": True}, os.path.join(d, "state_dict.bin"))
    shutil.copy(os.path.join(ROOT, "tests", "data", "encodec", "audiocraft",
                             "compression_state_dict.bin"), d)
    # A one-layer t5-base-width encoder: its time is outside the decoding time measured.
    from transformers import T5Config, T5EncoderModel
    t5 = T5EncoderModel(T5Config(vocab_size=703, d_model=768, d_kv=64, num_heads=12, d_ff=3072,
                                 num_layers=1, feed_forward_proj="relu"))
    t5.save_pretrained(os.path.join(tmp, "t5"))
    with open(os.path.join(tmp, "t5", "spiece.model"), "wb") as f:
        f.write(gzip.decompress(open(os.path.join(ROOT, "tests", "data", "t5", "spm.model.gz"),
                                     "rb").read()))
    return model, d, os.path.join(tmp, "t5")


def eight_step(cli, d, t5, threads):
    r = subprocess.run([cli, "music", "-m", d, "--t5", t5, "-p", "lofi hip hop", "--seed", "1",
                        "--steps", "1,1,1,1", "--duration", "10", "-t", str(threads), "-o",
                        os.path.join(os.path.dirname(d), "x.wav")],
                       capture_output=True, text=True, env={**os.environ, "EIGHT_LOG": "info"})
    assert r.returncode == 0, r.stderr
    return float(re.search(r"\(([0-9.e-]+) s per step", r.stderr).group(1))


def torch_step(model, threads):
    torch.set_num_threads(threads)
    T = 498
    codes = torch.randint(0, 2048, (2, 4, T))
    codes[:, 1:] = 2048
    cond = torch.randn(1, 12, 1024)
    conds = {"description": (torch.cat([cond, torch.zeros_like(cond)]), None)}
    model.attn_mask_per_stage = [None if m is None else m[..., :T, :T]
                                 for m in model.attn_mask_per_stage]
    t0 = time.perf_counter()
    with torch.no_grad():
        for s in range(4):
            model(codes, [], conds, stage=s)
    return (time.perf_counter() - t0) / 4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "bin", "eight"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model, d, t5 = build(tmp, a.layers)
        e, t = [], []
        for _ in range(a.runs):  # interleaved
            e.append(eight_step(a.cli, d, t5, a.threads))
            t.append(torch_step(model, a.threads))
        me, mt = statistics.median(e), statistics.median(t)
        # The step time is ~ linear in layers: scale the per-layer part to 24 layers (the output
        # linear and sampling are a small, layer-independent remainder, counted 24/L times here:
        # a conservative estimate for both).
        steps = 50
        rtf_e = 10 / (steps * me * 24 / a.layers)
        rtf_t = 10 / (steps * mt * 24 / a.layers)
        print(f"layers {a.layers}, threads {a.threads}, load {os.getloadavg()[0]:.1f}")
        print(f"eight   step {me * 1e3:8.1f} ms  (runs {[round(x * 1e3) for x in e]})")
        print(f"PyTorch step {mt * 1e3:8.1f} ms  (runs {[round(x * 1e3) for x in t]})")
        print(f"speedup {mt / me:.2f}x; extrapolated RTF for 10 s with 24 layers, steps "
              f"20,10,10,10: eight {rtf_e:.3f}, PyTorch {rtf_t:.3f}")


if __name__ == "__main__":
    main()
