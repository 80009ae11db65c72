#!/usr/bin/env python3
"""Writes the tiny SDXL pipeline's manifest, configs and reference outputs under tests/data/sdxl/.

Needs torch, diffusers and transformers (CPU is enough), which the test suite does not install;
run it once in a separate environment and commit what it writes:

    /work/diff-venv/bin/python tools/reference/make_sdxl_fixtures.py

1. The configs (tests/data/sdxl/tiny/) and, from diffusers' and transformers' instantiated
   modules, the ordered tensor names and shapes of each component (manifest.json).
2. tests/python/sdxl_tiny.py (numpy only) writes the pipeline with its deterministic random
   weights and the Stability-layout single file; this script checks that diffusers loads every
   weight of both unchanged.
3. The fixtures (float32 .npy) from StableDiffusionXLPipeline on the CPU in float32, and
   fixtures.json describing each one.
"""
import copy
import json
import os
import pathlib
import sys
import tempfile

import numpy as np
import torch
import diffusers
import transformers
from diffusers import (AutoencoderKL, DPMSolverMultistepScheduler, EulerDiscreteScheduler,
                       LCMScheduler, StableDiffusionXLPipeline, UNet2DConditionModel)
from diffusers.schedulers import scheduling_lcm
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "sdxl"
sys.path.insert(0, str(ROOT / "tests" / "python"))
sys.path.insert(0, str(ROOT / "tests" / "reference"))
import sdxl_tiny  # noqa: E402
import diffusion_ref  # noqa: E402

HEIGHT, WIDTH = 64, 96
PROMPT = "a photo of a cat"
NEGATIVE = "blurry, low quality"

MODEL_INDEX = {
    "_class_name": "StableDiffusionXLPipeline",
    "_diffusers_version": "0.19.0.dev0",
    "force_zeros_for_empty_prompt": True,
    "add_watermarker": None,
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "tokenizer_2": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}

# stabilityai/stable-diffusion-xl-base-1.0's unet/config.json with the tiny sizes.
UNET = {
    "_class_name": "UNet2DConditionModel",
    "_diffusers_version": "0.19.0.dev0",
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 8,
    "attention_head_dim": [1, 1, 2],
    "block_out_channels": [32, 64, 128],
    "center_input_sample": False,
    "class_embed_type": None,
    "class_embeddings_concat": False,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "cross_attention_dim": 192,
    "cross_attention_norm": None,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "dual_cross_attention": False,
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_only_cross_attention": None,
    "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "num_attention_heads": None,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 176,
    "resnet_out_scale_factor": 1.0,
    "resnet_skip_time_act": False,
    "resnet_time_scale_shift": "default",
    "sample_size": 8,
    "time_cond_proj_dim": None,
    "time_embedding_act_fn": None,
    "time_embedding_dim": None,
    "time_embedding_type": "positional",
    "timestep_post_act": None,
    "transformer_layers_per_block": [1, 1, 2],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "upcast_attention": None,
    "use_linear_projection": True,
}

VAE = {
    "_class_name": "AutoencoderKL",
    "_diffusers_version": "0.20.0.dev0",
    "act_fn": "silu",
    "block_out_channels": [32, 32, 64, 64],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 64,
    "scaling_factor": 0.13025,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}

TEXT_ENCODER = {
    "architectures": ["CLIPTextModel"],
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "dropout": 0.0,
    "eos_token_id": 2,
    "hidden_act": "quick_gelu",
    "hidden_size": 64,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "intermediate_size": 256,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "model_type": "clip_text_model",
    "num_attention_heads": 1,
    "num_hidden_layers": 3,
    "pad_token_id": 1,
    "projection_dim": 64,
    "torch_dtype": "float32",
    "vocab_size": 49408,
}

TEXT_ENCODER_2 = dict(TEXT_ENCODER, architectures=["CLIPTextModelWithProjection"],
                      hidden_act="gelu", hidden_size=128, intermediate_size=512,
                      num_attention_heads=2, projection_dim=128)

SCHEDULER = {
    "_class_name": "EulerDiscreteScheduler",
    "_diffusers_version": "0.19.0.dev0",
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


def token(content):
    return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": True,
            "rstrip": False, "single_word": False}


def tokenizer_files(pad):
    special = {"bos_token": token("<|startoftext|>"), "eos_token": token("<|endoftext|>"),
               "pad_token": pad, "unk_token": token("<|endoftext|>")}
    special_map = {k: (dict(v) if isinstance(v, dict) else v) for k, v in special.items()}
    for v in special_map.values():
        if isinstance(v, dict):
            del v["__type"]
    config = dict(special, add_prefix_space=False, do_lower_case=True, errors="replace",
                  model_max_length=77, name_or_path="openai/clip-vit-large-patch14",
                  special_tokens_map_file="./special_tokens_map.json",
                  tokenizer_class="CLIPTokenizer")
    return {"special_tokens_map.json": special_map, "tokenizer_config.json": config}


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def write_configs():
    tiny = DATA / "tiny"
    write_json(tiny / "model_index.json", MODEL_INDEX)
    write_json(tiny / "unet" / "config.json", UNET)
    write_json(tiny / "vae" / "config.json", VAE)
    write_json(tiny / "text_encoder" / "config.json", TEXT_ENCODER)
    write_json(tiny / "text_encoder_2" / "config.json", TEXT_ENCODER_2)
    write_json(tiny / "scheduler" / "scheduler_config.json", SCHEDULER)
    for folder, pad in [("tokenizer", "<|endoftext|>"), ("tokenizer_2", "!")]:
        for name, obj in tokenizer_files(pad).items():
            write_json(tiny / folder / name, obj)


def write_manifest():
    unet = UNet2DConditionModel.from_config(UNET)
    vae = AutoencoderKL.from_config(VAE)
    te = CLIPTextModel(CLIPTextConfig(**TEXT_ENCODER))
    te2 = CLIPTextModelWithProjection(CLIPTextConfig(**TEXT_ENCODER_2))

    def names(module, prefix=""):
        out = []
        for k, v in module.state_dict().items():
            # transformers >= 5.6 flattens CLIPTextModel; its files keep the "text_model." names.
            if prefix and not k.startswith(prefix):
                k = prefix + k
            out.append([k, list(v.shape)])
        return out

    manifest = {"unet": names(unet), "vae": names(vae), "text_encoder": names(te, "text_model."),
                "text_encoder_2": names(te2)}
    with open(DATA / "manifest.json", "w") as f:
        f.write("{\n")
        for i, (c, rows) in enumerate(manifest.items()):
            f.write(f'  "{c}": [\n')
            f.write(",\n".join("    " + json.dumps(r) for r in rows))
            f.write("\n  ]" + ("," if i + 1 < len(manifest) else "") + "\n")
        f.write("}\n")
    return manifest


def state_dict_of(module, component):
    sd = {k: v.detach().float().numpy() for k, v in module.state_dict().items()}
    if component == "text_encoder" and not any(k.startswith("text_model.") for k in sd):
        sd = {"text_model." + k: v for k, v in sd.items()}
    return sd


def check_weights(pipe_or_components, weights, what):
    for component, expected in weights.items():
        got = state_dict_of(pipe_or_components[component], component)
        missing = sorted(set(expected) ^ set(got))
        assert not missing, f"{what} {component}: names differ: {missing[:5]}"
        for name, a in expected.items():
            if not np.array_equal(got[name], a):
                raise AssertionError(f"{what} {component}: {name} differs")
    print(f"{what}: all weights equal the numpy writer's")


def load_single_file(path, tiny_dir):
    pipe = StableDiffusionXLPipeline.from_single_file(str(path), config=str(tiny_dir),
                                                      torch_dtype=torch.float32)
    return {"unet": pipe.unet, "vae": pipe.vae, "text_encoder": pipe.text_encoder,
            "text_encoder_2": pipe.text_encoder_2}


def save(name, a, dtype=np.float32):
    a = np.ascontiguousarray(np.asarray(a), dtype=dtype)
    np.save(DATA / f"{name}.npy", a)
    return f"{name}.npy"


def npf(t):
    return t.detach().float().numpy()


def main():
    torch.manual_seed(0)
    write_configs()
    manifest = write_manifest()
    weights = sdxl_tiny.make_weights(manifest)
    with tempfile.TemporaryDirectory() as tmp:
        tiny_dir = pathlib.Path(tmp) / "tiny"
        single = pathlib.Path(tmp) / "tiny.safetensors"
        sdxl_tiny.write_pipeline(tiny_dir, single)
        pipe = StableDiffusionXLPipeline.from_pretrained(str(tiny_dir), torch_dtype=torch.float32)
        check_weights({"unet": pipe.unet, "vae": pipe.vae, "text_encoder": pipe.text_encoder,
                       "text_encoder_2": pipe.text_encoder_2}, weights, "diffusers directory")
        check_weights(load_single_file(single, tiny_dir), weights, "single file")
        pipe.set_progress_bar_config(disable=True)
        fixtures = make_fixtures(pipe)
    fixtures["generator"] = (f"diffusers {diffusers.__version__}, transformers "
                             f"{transformers.__version__}, torch {torch.__version__}; "
                             "tools/reference/make_sdxl_fixtures.py")
    write_json(DATA / "fixtures.json", fixtures)
    total = sum(f.stat().st_size for f in DATA.glob("*.npy"))
    print(f"wrote fixtures: {total} bytes of .npy")


def make_fixtures(pipe):
    out = {"height": HEIGHT, "width": WIDTH, "dtype": "float32, CPU",
           "weights": "tests/python/sdxl_tiny.py --dtype f32"}
    # Text: tokens of both tokenizers and the pipeline's embeddings.
    text = {}
    for key, prompt in [("prompt", PROMPT), ("negative", NEGATIVE)]:
        ids1 = pipe.tokenizer(prompt, padding="max_length", max_length=77, truncation=True,
                              return_tensors="np").input_ids[0]
        ids2 = pipe.tokenizer_2(prompt, padding="max_length", max_length=77, truncation=True,
                                return_tensors="np").input_ids[0]
        with torch.no_grad():
            embeds, _, pooled, _ = pipe.encode_prompt(prompt, device="cpu",
                                                      num_images_per_prompt=1,
                                                      do_classifier_free_guidance=False)
        text[key] = {
            "text": prompt,
            "tokens": save(f"text_{key}_tokens", ids1, np.int32),
            "tokens_2": save(f"text_{key}_tokens_2", ids2, np.int32),
            "prompt_embeds": save(f"text_{key}_embeds", npf(embeds)),
            "pooled_prompt_embeds": save(f"text_{key}_pooled", npf(pooled)),
        }
    text["note"] = ("encode_prompt: hidden_states[-2] (before final_layer_norm) of each text "
                    "encoder, concatenated [77, 64 + 128]; pooled = text_encoder_2's text_embeds "
                    "(final_layer_norm at the first <|endoftext|> (argmax of the ids, as "
                    "eos_token_id is 2 in the config), then text_projection). tokenizer pads "
                    "with <|endoftext|> (49407), tokenizer_2 with '!' (0).")
    out["text"] = text

    # One UNet call, batch 2: context = [negative, prompt] embeddings from the text fixtures.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, HEIGHT // 8, WIDTH // 8)).astype(np.float32)
    neg = np.load(DATA / text["negative"]["prompt_embeds"])
    pos = np.load(DATA / text["prompt"]["prompt_embeds"])
    context = np.concatenate([neg, pos])
    text_embeds = np.concatenate([np.load(DATA / text["negative"]["pooled_prompt_embeds"]),
                                  np.load(DATA / text["prompt"]["pooled_prompt_embeds"])])
    time_ids = np.array([[HEIGHT, WIDTH, 0, 0, HEIGHT, WIDTH]] * 2, dtype=np.float32)
    timesteps = [999, 500]
    with torch.no_grad():
        y = pipe.unet(torch.from_numpy(x), torch.tensor(timesteps, dtype=torch.float32),
                      encoder_hidden_states=torch.from_numpy(context),
                      added_cond_kwargs={"text_embeds": torch.from_numpy(text_embeds),
                                         "time_ids": torch.from_numpy(time_ids)}).sample
    out["unet_call"] = {
        "x": save("unet_call_x", x),
        "timesteps": timesteps,
        "context": [text["negative"]["prompt_embeds"], text["prompt"]["prompt_embeds"]],
        "context_note": "concatenate the two files on axis 0: [2, 77, 192]",
        "text_embeds": [text["negative"]["pooled_prompt_embeds"],
                        text["prompt"]["pooled_prompt_embeds"]],
        "time_ids": time_ids.tolist(),
        "time_ids_note": "original_size (h, w), crop top-left (top, left), target_size (h, w)",
        "output": save("unet_call_out", npf(y)),
    }

    # Full runs from given noise.
    noise = np.random.default_rng(0).standard_normal((4, HEIGHT // 8, WIDTH // 8)).astype(
        np.float32)
    out["noise"] = save("noise", noise)
    base = dict(pipe.scheduler.config)
    lcm_noise = []
    lcm_rng = diffusion_ref.Rng(0, stream=1)

    def lcm_randn(shape, generator=None, device=None, dtype=None, layout=None):
        n = lcm_rng.normal(tuple(shape)).astype(np.float32)
        lcm_noise.append(n[0])
        return torch.from_numpy(n).to(dtype or torch.float32)

    scheduling_lcm.randn_tensor = lcm_randn
    runs = [
        ("euler", EulerDiscreteScheduler.from_config(base), PROMPT, NEGATIVE, 5.0),
        ("dpmpp2m", DPMSolverMultistepScheduler.from_config(base, use_karras_sigmas=True),
         PROMPT, None, 5.0),
        ("lcm", LCMScheduler.from_config(base), PROMPT, None, 1.0),
    ]
    out["runs"] = {}
    latents_of = {}
    for name, scheduler, prompt, negative, cfg in runs:
        pipe.scheduler = scheduler
        with torch.no_grad():
            lat = pipe(prompt=prompt, negative_prompt=negative, height=HEIGHT, width=WIDTH,
                       num_inference_steps=4, guidance_scale=cfg,
                       latents=torch.from_numpy(noise[None]).clone(),
                       output_type="latent").images
        latents_of[name] = npf(lat)
        run = {
            "prompt": prompt, "negative_prompt": negative, "steps": 4, "guidance_scale": cfg,
            "height": HEIGHT, "width": WIDTH, "noise": "noise.npy",
            "noise_note": "the pipeline's latents= argument noise[None]; it multiplies it by "
                          "scheduler.init_noise_sigma",
            "scheduler_class": type(scheduler).__name__,
            "scheduler_config": {k: v for k, v in scheduler.config.items()},
            "timesteps": [float(t) for t in scheduler.timesteps],
            "init_noise_sigma": float(scheduler.init_noise_sigma),
            "latents": save(f"latents_{name}", npf(lat)[0]),
        }
        if name == "lcm":
            run["step_noise"] = save("lcm_step_noise", np.stack(lcm_noise))
            run["step_noise_note"] = (
                "LCMScheduler.step's randn for each step but the last, in order, drawn from "
                "tests/reference/diffusion_ref.py Rng(seed=0, stream=1) with shape [1, 4, 8, 12]")
        out["runs"][name] = json.loads(json.dumps(run, default=str))

    # VAE decode of the euler latents, then encode of that image clamped to [-1, 1].
    sf = pipe.vae.config.scaling_factor
    with torch.no_grad():
        image = pipe.vae.decode(torch.from_numpy(latents_of["euler"]) / sf).sample
        posterior = pipe.vae.encode(image.clamp(-1, 1)).latent_dist
    out["vae_decode"] = {"latents": "latents_euler.npy", "scaling_factor": sf,
                         "input_note": "vae.decode(latents[None] / scaling_factor)",
                         "image": save("vae_decode_image", npf(image))}
    out["vae_encode"] = {"image_note": "vae_decode_image clamped to [-1, 1]",
                         "mean": save("vae_encode_mean", npf(posterior.mean)),
                         "std": save("vae_encode_std", npf(posterior.std))}
    return out


if __name__ == "__main__":
    main()
