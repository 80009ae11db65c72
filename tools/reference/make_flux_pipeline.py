#!/usr/bin/env python3
"""Writes the tiny FLUX.1-schnell-shaped pipeline and its reference outputs (tests/data/flux_pipe/,
tests/data/flux_ref/), and diffusers' flow-match schedules (tests/data/flux_ref/scheduler.json).

Needs torch, diffusers and transformers (CPU is enough), which the test suite does not install;
run it once and commit what it writes:

    /work/diff-venv/bin/python tools/reference/make_flux_pipeline.py

The pipeline (random weights, torch.manual_seed(0)), as a diffusers FluxPipeline directory:
  text_encoder/    CLIPTextModel, hidden 64 in one 64-wide head (so that a config-less copy is
                   read with the same head count), 2 layers, quick_gelu; its tokenizer/ is OpenAI's
                   CLIP BPE cut to its first 1000 merges (1514 tokens; tests/python/sdxl_tiny.py's
                   construction) so the embedding stays small
  text_encoder_2/  tests/data/t5/t5v11 (a T5 v1.1-shaped T5EncoderModel, d_model 32) with its
                   SentencePiece model as tokenizer_2/spiece.model
  transformer/     FluxTransformer2DModel: 1 double and 2 single blocks, 2 heads of 16
                   (rotary axes 4, 6, 6), joint_attention_dim 32, pooled_projection_dim 64, no
                   guidance embedding (schnell)
  vae/             AutoencoderKL with FLUX's layout (16 latent channels, no quant convs, scaling
                   0.3611, shift 0.1159), 4 levels of 8/8/16/16 channels
  scheduler/       FLUX.1-schnell's scheduler_config.json

References (float32, CPU), for a 96x64 image, 4 steps, the given noise:
  noise.npy              [16, 8, 12] unit normal noise (unpacked, as --init-noise takes it)
  clip_ids.npy / t5_ids.npy        the two tokenizers' ids (77 and 256)
  pooled.npy [64], prompt_embeds.npy [256, 32]    the pipeline's encode_prompt
  latents.npy [16, 8, 12]          the final latents (output_type="latent", unpacked)
  image.npy [3, 64, 96]            vae.decode(latents / scaling + shift) in [-1, 1]
  separate/flux1-tiny-comfy.safetensors  the transformer in BFL's names under
                                   "model.diffusion_model.", with its config.json beside it
"""
import gzip
import json
import pathlib
import shutil
import sys
import tempfile

import numpy as np
import safetensors.torch
import torch
from diffusers import (AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline,
                       FluxTransformer2DModel)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5EncoderModel, T5TokenizerFast

ROOT = pathlib.Path(__file__).resolve().parents[2]
PIPE = ROOT / "tests" / "data" / "flux_pipe"
REF = ROOT / "tests" / "data" / "flux_ref"
sys.path.insert(0, str(ROOT / "tests" / "python"))
import sdxl_tiny  # noqa: E402
sys.path.insert(0, str(ROOT / "tools" / "reference"))
from make_flux_transformer import to_bfl  # noqa: E402  (fluxt's BFL naming, not a copy)

PROMPT = "a photo of a cat"
HEIGHT, WIDTH, STEPS = 64, 96, 4
N_MERGES = 1000

SCHNELL_SCHEDULER = {  # black-forest-labs/FLUX.1-schnell scheduler/scheduler_config.json
    "_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": "0.29.0.dev0",
    "base_image_seq_len": 256, "base_shift": 0.5, "max_image_seq_len": 4096, "max_shift": 1.15,
    "num_train_timesteps": 1000, "shift": 1.0, "use_dynamic_shifting": False}
DEV_SCHEDULER = dict(SCHNELL_SCHEDULER, shift=3.0, use_dynamic_shifting=True)


def write_clip_tokenizer(folder):
    merges = sdxl_tiny.clip_merges()[:N_MERGES]
    symbols = sdxl_tiny.byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    folder.mkdir(parents=True, exist_ok=True)
    sdxl_tiny.write_tokenizer(folder, vocab, merges)
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        dict(special, model_max_length=77, do_lower_case=True, tokenizer_class="CLIPTokenizer"),
        indent=2))
    return vocab


def build(tmp):
    torch.manual_seed(0)
    vocab = write_clip_tokenizer(PIPE / "tokenizer")
    clip = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=1, max_position_embeddings=77, hidden_act="quick_gelu",
        projection_dim=64, bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"]))
    t5 = T5EncoderModel.from_pretrained(ROOT / "tests" / "data" / "t5" / "t5v11")
    (PIPE / "tokenizer_2").mkdir(parents=True, exist_ok=True)
    (PIPE / "tokenizer_2" / "spiece.model").write_bytes(
        gzip.decompress((ROOT / "tests" / "data" / "t5" / "spm.model.gz").read_bytes()))
    # transformers' own conversion of the same SentencePiece model (tests/data/t5, checked there
    # against sentencepiece's ids).
    (tmp / "tokenizer.json").write_bytes(
        gzip.decompress((ROOT / "tests" / "data" / "t5" / "tokenizer.json.gz").read_bytes()))
    tok2 = T5TokenizerFast(tokenizer_file=str(tmp / "tokenizer.json"), model_max_length=512)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=1, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=t5.config.d_model,
        pooled_projection_dim=64, guidance_embeds=False, axes_dims_rope=(4, 6, 6))
    # Random init leaves the output projections of AdaLN-zero style layers at their defaults;
    # scale everything up a little so every path contributes.
    with torch.no_grad():
        for p in transformer.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=16,
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[8, 8, 16, 16], layers_per_block=1, norm_num_groups=4,
        scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False,
        use_post_quant_conv=False, sample_size=64)
    with torch.no_grad():
        for p in vae.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(SCHNELL_SCHEDULER)
    return FluxPipeline(scheduler=scheduler, vae=vae, text_encoder=clip,
                        tokenizer=CLIPTokenizer(str(PIPE / "tokenizer" / "vocab.json"),
                                                str(PIPE / "tokenizer" / "merges.txt"),
                                                model_max_length=77),
                        text_encoder_2=t5, tokenizer_2=tok2,
                        transformer=transformer)


def scheduler_cases():
    cases = []
    for name, cfg in [("schnell", SCHNELL_SCHEDULER), ("dev", DEV_SCHEDULER)]:
        for steps in [1, 4, 28]:
            for seq in [24, 1024, 4096]:
                s = FlowMatchEulerDiscreteScheduler.from_config(cfg)
                sigmas = np.linspace(1.0, 1 / steps, steps)
                mu = float(np.float64(seq) * (1.15 - 0.5) / (4096 - 256) + (0.5 - (1.15 - 0.5) / (4096 - 256) * 256))
                s.set_timesteps(sigmas=sigmas, mu=mu)
                # One Euler step from a fixed sample and velocity.
                x = torch.linspace(-1, 1, 6)
                v = torch.cos(torch.arange(6.0))
                s.set_begin_index(0)
                y = s.step(v, s.timesteps[0], x).prev_sample
                cases.append({"config": name, "steps": steps, "image_seq_len": seq,
                              "sigmas": s.sigmas.tolist(), "timesteps": s.timesteps.tolist(),
                              "x": x.tolist(), "v": v.tolist(), "step0": y.tolist()})
    return cases


def main():
    if PIPE.exists():
        shutil.rmtree(PIPE)
    (REF / "separate").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as t:
        pipe = build(pathlib.Path(t))
    pipe.save_pretrained(PIPE, safe_serialization=True)
    # transformers 5 saves CLIPTextModel without its "text_model." prefix; the files people have
    # (FLUX.1-schnell's text_encoder/, clip_l.safetensors) carry it, and transformers reads both.
    te = PIPE / "text_encoder" / "model.safetensors"
    tensors = safetensors.torch.load_file(te)
    safetensors.torch.save_file(
        {(k if k.startswith("text_model.") else "text_model." + k): v for k, v in tensors.items()},
        te, metadata={"format": "pt"})
    # tokenizer_2/ keeps spiece.model (as black-forest-labs/FLUX.1-schnell has it) and not the
    # 600 kB tokenizer.json that transformers derives from it.
    (PIPE / "tokenizer_2" / "tokenizer.json").unlink(missing_ok=True)
    (PIPE / "tokenizer_2" / "spiece.model").write_bytes(
        gzip.decompress((ROOT / "tests" / "data" / "t5" / "spm.model.gz").read_bytes()))
    # Reload: the references come from the files as committed.
    # (tokenizer_2 as built: transformers 5 reads no tokenizer.json-less T5 folder itself.)
    pipe = FluxPipeline.from_pretrained(PIPE, torch_dtype=torch.float32,
                                        tokenizer_2=pipe.tokenizer_2)
    g = torch.Generator().manual_seed(1234)
    noise = torch.randn((1, 16, HEIGHT // 8, WIDTH // 8), generator=g)
    packed = FluxPipeline._pack_latents(noise, 1, 16, HEIGHT // 8, WIDTH // 8)
    with torch.no_grad():
        prompt_embeds, pooled, _ = pipe.encode_prompt(PROMPT, None, max_sequence_length=256)
        out = pipe(PROMPT, height=HEIGHT, width=WIDTH, num_inference_steps=STEPS,
                   guidance_scale=0.0, max_sequence_length=256, latents=packed,
                   output_type="latent").images
        latents = FluxPipeline._unpack_latents(out, HEIGHT, WIDTH, pipe.vae_scale_factor)
        z = latents / pipe.vae.config.scaling_factor + pipe.vae.config.shift_factor
        image = pipe.vae.decode(z).sample
    clip_ids = pipe.tokenizer(PROMPT, padding="max_length", max_length=77, truncation=True,
                              return_tensors="np").input_ids[0]
    t5_ids = pipe.tokenizer_2(PROMPT, padding="max_length", max_length=256, truncation=True,
                              return_tensors="np").input_ids[0]
    arrays = {"noise": noise[0], "pooled": pooled[0], "prompt_embeds": prompt_embeds[0],
              "latents": latents[0], "image": image[0]}
    for k, v in arrays.items():
        np.save(REF / f"{k}.npy", v.numpy().astype(np.float32))
    np.save(REF / "clip_ids.npy", clip_ids.astype(np.int32))
    np.save(REF / "t5_ids.npy", t5_ids.astype(np.int32))
    (REF / "fixtures.json").write_text(json.dumps(
        {"prompt": PROMPT, "height": HEIGHT, "width": WIDTH, "steps": STEPS,
         "max_sequence_length": 256, "guidance_scale": 0.0}, indent=1))
    (REF / "scheduler.json").write_text(json.dumps({"cases": scheduler_cases()}))
    # The same transformer as BFL's single file, under ComfyUI's prefix (flux1-schnell.safetensors
    # as ComfyUI saves it); CLIP-L and T5 as separate files are text_encoder/model.safetensors and
    # text_encoder_2/model.safetensors, which already have Hugging Face's key layouts.
    cfg = pipe.transformer.config
    bfl = to_bfl(dict(pipe.transformer.state_dict()), cfg.num_layers, cfg.num_single_layers)
    safetensors.torch.save_file(
        {"model.diffusion_model." + k: v.contiguous() for k, v in bfl.items()},
        REF / "separate" / "flux1-tiny-comfy.safetensors")
    # Head size 16 is not FLUX.1's 128, so the rotary split comes from a config beside the file.
    shutil.copyfile(PIPE / "transformer" / "config.json", REF / "separate" / "config.json")
    print("latents std", float(latents.std()), "image std", float(image.std()))


if __name__ == "__main__":
    main()
