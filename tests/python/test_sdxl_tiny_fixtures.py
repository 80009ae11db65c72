"""The tiny SDXL pipeline writer (tests/python/sdxl_tiny.py): deterministic bytes, a single file
that holds the directory's tensors under Stability's names, and the CLIP vocabulary."""
import json
import pathlib
import re

import numpy as np
import pytest

import sdxl_tiny

FILES = ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
         "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
         "text_encoder/config.json", "text_encoder/model.safetensors",
         "text_encoder_2/config.json", "text_encoder_2/model.safetensors",
         "scheduler/scheduler_config.json", "tokenizer/vocab.json", "tokenizer/merges.txt",
         "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json",
         "tokenizer_2/vocab.json", "tokenizer_2/merges.txt", "tokenizer_2/tokenizer_config.json",
         "tokenizer_2/special_tokens_map.json"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("sdxl")
    sdxl_tiny.write_pipeline(root / "a", root / "a.safetensors")
    return root


def test_writing_twice_gives_the_same_bytes(tiny):
    sdxl_tiny.write_pipeline(tiny / "b", tiny / "b.safetensors")
    for f in FILES:
        assert (tiny / "a" / f).read_bytes() == (tiny / "b" / f).read_bytes(), f
    assert (tiny / "a.safetensors").read_bytes() == (tiny / "b.safetensors").read_bytes()


def test_directory_matches_the_manifest(tiny):
    manifest = sdxl_tiny.load_manifest()
    for component, filename in sdxl_tiny.COMPONENTS.items():
        got = sdxl_tiny.read_safetensors(tiny / "a" / component / filename)
        assert sorted(got) == sorted(n for n, _ in manifest[component])
        for name, shape in manifest[component]:
            assert list(got[name].shape) == shape, name
            assert got[name].dtype == np.float32
            assert np.isfinite(got[name]).all()


def test_single_file_holds_the_directory_tensors(tiny):
    single = sdxl_tiny.read_safetensors(tiny / "a.safetensors")
    used = set()

    def take(name):
        assert name in single, name
        used.add(name)
        return single[name]

    for component, filename in sdxl_tiny.COMPONENTS.items():
        cfg = sdxl_tiny.load_config(component)
        for name, a in sdxl_tiny.read_safetensors(tiny / "a" / component / filename).items():
            if component == "unet":
                b = take("model.diffusion_model." + sdxl_tiny.unet_original_name(name, cfg))
            elif component == "vae":
                b = take("first_stage_model." + sdxl_tiny.vae_original_name(name, cfg))
                if sdxl_tiny.is_vae_attention_matrix(name):
                    assert b.shape == a.shape + (1, 1), name
                    b = b[:, :, 0, 0]
            elif component == "text_encoder":
                b = take("conditioner.embedders.0.transformer." + name)
            else:
                prefix = "conditioner.embedders.1.model."
                m = re.fullmatch(r"text_model\.encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\."
                                 r"(weight|bias)", name)
                if m:
                    fused = take(f"{prefix}transformer.resblocks.{m[1]}.attn.in_proj_{m[3]}")
                    d = fused.shape[0] // 3
                    b = fused["qkv".index(m[2]) * d:("qkv".index(m[2]) + 1) * d]
                elif name == "text_projection.weight":
                    b = take(prefix + "text_projection").T
                else:
                    b = take(prefix + sdxl_tiny.open_clip_original_name(name))
            assert b.shape == a.shape and np.array_equal(a, b), f"{component} {name}"
    extra = sorted(set(single) - used)
    assert extra == ["conditioner.embedders.0.transformer.text_model.embeddings.position_ids"]


def test_unet_single_file_names_follow_stability_layout():
    cfg = sdxl_tiny.load_config("unet")
    cases = {
        "conv_in.weight": "input_blocks.0.0.weight",
        "down_blocks.0.resnets.1.conv1.weight": "input_blocks.2.0.in_layers.2.weight",
        "down_blocks.0.downsamplers.0.conv.bias": "input_blocks.3.0.op.bias",
        "down_blocks.2.attentions.1.transformer_blocks.1.attn2.to_k.weight":
            "input_blocks.8.1.transformer_blocks.1.attn2.to_k.weight",
        "mid_block.resnets.1.time_emb_proj.weight": "middle_block.2.emb_layers.1.weight",
        "mid_block.attentions.0.proj_in.weight": "middle_block.1.proj_in.weight",
        "up_blocks.0.resnets.2.conv_shortcut.weight": "output_blocks.2.0.skip_connection.weight",
        "up_blocks.0.upsamplers.0.conv.weight": "output_blocks.2.2.conv.weight",
        "up_blocks.1.attentions.0.norm.weight": "output_blocks.3.1.norm.weight",
        "up_blocks.2.resnets.0.norm2.bias": "output_blocks.6.0.out_layers.0.bias",
        "add_embedding.linear_2.weight": "label_emb.0.2.weight",
        "conv_norm_out.weight": "out.0.weight",
    }
    for diffusers_name, original in cases.items():
        assert sdxl_tiny.unet_original_name(diffusers_name, cfg) == original


def test_vae_single_file_names_follow_ldm_layout():
    cfg = sdxl_tiny.load_config("vae")
    cases = {
        "decoder.up_blocks.0.resnets.2.conv1.weight": "decoder.up.3.block.2.conv1.weight",
        "decoder.up_blocks.2.upsamplers.0.conv.bias": "decoder.up.1.upsample.conv.bias",
        "encoder.down_blocks.1.resnets.0.conv_shortcut.weight":
            "encoder.down.1.block.0.nin_shortcut.weight",
        "encoder.mid_block.attentions.0.to_out.0.weight": "encoder.mid.attn_1.proj_out.weight",
        "decoder.mid_block.resnets.1.norm2.weight": "decoder.mid.block_2.norm2.weight",
        "encoder.conv_norm_out.bias": "encoder.norm_out.bias",
    }
    for diffusers_name, original in cases.items():
        assert sdxl_tiny.vae_original_name(diffusers_name, cfg) == original


def test_vocabulary_is_clips(tiny):
    vocab = json.loads((tiny / "a" / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))
    assert len(vocab) == 49408
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407
    assert vocab["!"] == 0 and vocab["!</w>"] == 256 and vocab["i n"[::2]] == 512
    merges = (tiny / "a" / "tokenizer" / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert merges[0] == "#version: 0.2" and len(merges) == 1 + 48894
    # The committed fixtures' tokens are ids of this vocabulary.
    ids = np.load(sdxl_tiny.DATA / "text_prompt_tokens.npy")
    inverse = {i: t for t, i in vocab.items()}
    words = [inverse[int(i)] for i in ids[1:7]]
    assert words == ["a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>", "<|endoftext|>"]


def test_bf16_rounds_to_nearest_even():
    x = np.array([1.0, 1.00390625, 1.01171875, -2.5], dtype=np.float32)
    back = sdxl_tiny.from_bf16_bits(sdxl_tiny.to_bf16_bits(x))
    assert back.tolist() == [1.0, 1.0, 1.015625, -2.5]
