#!/usr/bin/env python3
"""Fixtures for eight's MAGNeT language model (tests/data/magnet/).

Run with /work/diff-venv/bin/python (torch, transformers) plus einops and omegaconf, and an
unpacked audiocraft source tree (`pip download audiocraft==1.3.0 --no-deps`, untar):
  AUDIOCRAFT_SRC=/tmp/ac/audiocraft-1.3.0 python tools/reference/make_magnet.py

audiocraft's package __init__ pulls in its whole training stack (flashy, spacy, xformers,
soundfile ...), which does not install here. So this imports only the model modules:
audiocraft/modules/transformer.py (StreamingTransformer: the layers, attention and sinusoidal
positions), models/lm.py (LMModel: embeddings, forward, output linears) and models/lm_magnet.py
(MagnetLMModel: the restricted per-stage attention masks), with tiny stand-ins for the imports
they need at module level but do not use on this path (xformers, the conditioner/fuser classes,
utils). The stand-in fuser does what audiocraft's ConditionFuser does for 'cross'; the T5
conditioner's tail (output_proj, masking) is written here from conditioners.py's T5Conditioner.

Writes:
  state_dict.bin    torch.save({'best_state', 'xp.cfg' (OmegaConf.to_yaml text), 'version',
                    'exported'}) as audiocraft's export_lm does
  t5/               a copy of tests/data/t5/t5 (tiny t5-base-shaped encoder)
  ids.npy           int32 token ids of the prompt
  cond.npy          f32 [S, dim] conditioner output for ids (T5 -> output_proj -> * mask)
  codes.npy         int32 [4, T] codes, some set to the mask id (card)
  logits_s0.npy     f32 [2, 4, T, card] LM logits (batch: cond, null cond), stage 0 (no mask)
  logits_s2.npy     f32 [2, 4, T, card] the same for stage 2 (restricted +-5 attention)
  greedy_codes.npy  int32 [4, 15] codes from MagnetLMModel._generate_stage itself, stages 0-3 with
                    steps [3, 2, 2, 2], use_sampling=False (argmax: no randomness), for cond
  schedule.json     _generate_stage's per-step numbers (mask_p, spans masked, CFG coefficient,
                    temperature) for a few step counts, by the expressions lm_magnet.py uses
"""
import json
import math
import os
import shutil
import sys
import types

import numpy as np
import torch
from torch import nn

SRC = os.environ.get("AUDIOCRAFT_SRC", "/tmp/ac/audiocraft-1.3.0")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "data", "magnet")
T5_DIR = os.path.join(ROOT, "tests", "data", "t5", "t5")


def stub(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


class ConditionFuser(nn.Module):
    """audiocraft's ConditionFuser for fuse2cond={'cross': ['description']} without positional
    embedding: the input passes through, the condition becomes the cross-attention source."""

    def __init__(self):
        super().__init__()
        self.fuse2cond = {"cross": ["description"], "prepend": [], "sum": [],
                          "input_interpolate": []}

    def forward(self, x, conditions):
        return x, conditions["description"][0]


class T5Tail(nn.Module):
    def __init__(self, t5_dim, out_dim):
        super().__init__()
        self.output_proj = nn.Linear(t5_dim, out_dim)


class ConditioningProvider(nn.Module):
    def __init__(self, t5_dim, out_dim):
        super().__init__()
        self.conditioners = nn.ModuleDict({"description": T5Tail(t5_dim, out_dim)})


def import_audiocraft():
    sys.path.insert(0, SRC)
    pkg = stub("audiocraft")
    pkg.__path__ = [os.path.join(SRC, "audiocraft")]
    for sub in ("modules", "models", "utils"):
        m = stub("audiocraft." + sub)
        m.__path__ = [os.path.join(SRC, "audiocraft", sub)]
    stub("xformers", ops=types.SimpleNamespace(unbind=torch.unbind))  # xformers.ops.unbind
    stub("audiocraft.utils.utils")
    ident = lambda p=0.0, **k: (lambda c: c)  # noqa: E731 (dropouts are unused at inference)
    stub("audiocraft.modules.conditioners", ConditionFuser=ConditionFuser,
         ClassifierFreeGuidanceDropout=ident, AttributeDropout=ident,
         ConditioningProvider=ConditioningProvider, ConditioningAttributes=object,
         ConditionType=tuple)
    from audiocraft.models.lm_magnet import MagnetLMModel  # noqa: E402
    import audiocraft.modules.transformer as tr  # noqa: E402
    tr.set_efficient_attention_backend("torch")
    return MagnetLMModel


CFG = """\
device: cpu
dtype: float32
sample_rate: 32000
channels: 1
lm_model: transformer_lm_magnet
solver: magnet
compression_model_checkpoint: //pretrained/facebook/encodec_32khz
dataset:
  segment_duration: 10
  batch_size: 192
  sample_on_weight: false
codebooks_pattern:
  modeling: parallel
  parallel:
    empty_initial: -1
transformer_lm:
  dim: {dim}
  num_heads: {heads}
  num_layers: {layers}
  hidden_scale: 4
  n_q: 4
  card: {card}
  dropout: 0.0
  emb_lr: null
  activation: gelu
  norm_first: true
  bias_ff: false
  bias_attn: false
  bias_proj: false
  past_context: null
  causal: false
  custom: false
  memory_efficient: true
  attention_as_float32: false
  layer_scale: null
  positional_embedding: sin
  xpos: false
  checkpointing: none
  weight_init: gaussian
  depthwise_init: current
  zero_bias_init: true
  norm: layer_norm
  cross_attention: false
  qk_layer_norm: false
  qk_layer_norm_cross: false
  attention_dropout: null
  kv_repeat: 1
  two_step_cfg: false
  subcodes_context: 5
  compression_model_framerate: 50
  segment_duration: 0
  span_len: -1
masking:
  span_len: 3
classifier_free_guidance:
  training_dropout: 0.2
  inference_coef: 3.0
attribute_dropout: {{}}
fuser:
  cross_attention_pos_emb: false
  cross_attention_pos_emb_scale: 1
  sum: []
  prepend: []
  cross:
  - description
  input_interpolate: []
conditioners:
  description:
    model: t5
    t5:
      name: t5-base
      finetune: false
      word_dropout: 0.3
      normalize_text: false
generate:
  lm:
    use_sampling: true
    temp: 3.0
    top_k: 0
    top_p: 0.9
    max_cfg_coef: 10.0
    min_cfg_coef: 1.0
    decoding_steps:
    - 60
    - 10
    - 10
    - 10
    span_scoring: max
    span_arrangement: nonoverlap
"""


def schedule():
    """The deterministic per-step numbers of MagnetLMModel._generate_stage (same expressions)."""
    out = []
    temp, max_cfg_coef, min_cfg_coef = 3.0, 10.0, 1.0
    for timesteps, n_chunks in ((20, 166), (10, 166), (10, 5), (4, 1000), (1, 7), (60, 498)):
        rows = []
        for timestep, steps_left in zip(torch.linspace(0, 1, timesteps), reversed(range(timesteps))):
            mask_p = torch.cos(timestep * math.pi * 0.5)
            num_masked = max(int((mask_p * n_chunks).item()), 1)
            clsfg_coef = float(mask_p) * max_cfg_coef + (1 - float(mask_p)) * min_cfg_coef
            t = temp * (steps_left / timesteps)
            rows.append({"mask_p": float(mask_p), "num_masked": num_masked, "cfg": clsfg_coef,
                         "temp": t})
        out.append({"steps": timesteps, "n_spans": n_chunks, "rows": rows})
    return out


def main():
    from omegaconf import OmegaConf
    from transformers import T5EncoderModel

    torch.manual_seed(0)
    MagnetLMModel = import_audiocraft()
    dim, heads, layers, card, T = 32, 4, 2, 64, 16
    cfg_text = OmegaConf.to_yaml(OmegaConf.create(
        CFG.format(dim=dim, heads=heads, layers=layers, card=card)))
    t5 = T5EncoderModel.from_pretrained(T5_DIR).eval()
    t5_dim = t5.config.d_model
    model = MagnetLMModel(
        pattern_provider=None, condition_provider=ConditioningProvider(t5_dim, dim),
        fuser=ConditionFuser(), n_q=4, card=card, dim=dim, num_heads=heads, num_layers=layers,
        hidden_scale=4, norm="layer_norm", norm_first=True, bias_proj=False, bias_ff=False,
        bias_attn=False, activation="gelu", causal=False, custom=True, cross_attention=True,
        dropout=0.0, subcodes_context=5, compression_model_framerate=50, segment_duration=10,
        span_len=3, device="cpu", dtype=torch.float32, weight_init="gaussian",
        depthwise_init="current").eval()
    with torch.no_grad():  # the LayerNorms start as (1, 0): make them matter in the test
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.2 * torch.randn_like(p))
    # The masks are built for the 10 s segment (aligned to 504) and sliced to the sequence as the
    # xformers path does; the custom path used here adds them to the scores.
    masks = [None if m is None else m[..., :T, :T] for m in model.attn_mask_per_stage]
    model.attn_mask_per_stage = masks

    os.makedirs(OUT, exist_ok=True)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save({"best_state": sd, "xp.cfg": cfg_text, "version": "1.3.0", "exported": True},
               os.path.join(OUT, "state_dict.bin"))
    shutil.copytree(T5_DIR, os.path.join(OUT, "t5"), dirs_exist_ok=True)

    ids = torch.tensor([[57, 119, 699, 16, 15, 16, 8, 10, 1]])
    with torch.no_grad():
        proj = model.condition_provider.conditioners["description"].output_proj
        hidden = t5(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        cond = proj(hidden) * torch.ones_like(ids).unsqueeze(-1)
        # the null condition (ClassifierFreeGuidanceDropout p=1): text "" tokenizes to padding
        # whose mask is zeroed, so its embeddings are all zero; batched with the prompt it has
        # the prompt's length.
        null = torch.zeros_like(cond)
        gen = torch.Generator().manual_seed(1)
        codes = torch.randint(0, card, (1, 4, T), generator=gen)
        codes[0, 2, 3:9] = card
        codes[0, 3, :] = card
        codes[0, 1, 12:] = card
        seq = torch.cat([codes, codes], 0)
        conds = {"description": (torch.cat([cond, null], 0), None)}
        l0 = model(seq, [], conds, stage=0)
        l2 = model(seq, [], conds, stage=2)
        # The decoding loop itself, made deterministic with use_sampling=False. _generate_stage
        # cuts 16 frames to 15 (whole spans of 3); the masks follow.
        model.attn_mask_per_stage = [None if m is None else m[..., :15, :15] for m in masks]
        gen = torch.full((1, 4, 16), card, dtype=torch.long)
        for stage, steps in enumerate([3, 2, 2, 2]):
            gen, _ = model._generate_stage(gen, conds, stage=stage, device="cpu",
                                           use_sampling=False, temp=3.0, max_cfg_coef=10.0,
                                           min_cfg_coef=1.0, top_p=0.9, timesteps=steps)
    np.save(os.path.join(OUT, "greedy_codes.npy"), gen[0].numpy().astype(np.int32))
    np.save(os.path.join(OUT, "ids.npy"), ids[0].numpy().astype(np.int32))
    np.save(os.path.join(OUT, "cond.npy"), cond[0].numpy().astype(np.float32))
    np.save(os.path.join(OUT, "codes.npy"), codes[0].numpy().astype(np.int32))
    np.save(os.path.join(OUT, "logits_s0.npy"), l0.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "logits_s2.npy"), l2.numpy().astype(np.float32))
    with open(os.path.join(OUT, "schedule.json"), "w") as f:
        json.dump(schedule(), f)
    print("wrote", OUT, "keys:", len(sd))
    for k, v in sd.items():
        print(" ", k, tuple(v.shape))


if __name__ == "__main__":
    main()
