#!/usr/bin/env python3
"""Writes LLaVA-NeXT (LLaVA 1.6) fixtures to tests/data/llava/ from transformers' reference code.

Needs torch and transformers (CPU is enough), which the test suite does not install; run it once
in a separate environment and commit what it writes:

    /work/diff-venv/bin/python tools/reference/make_llava_fixtures.py

What it writes:
- img_*.png: generated images of several aspect ratios (landscape, portrait, square, very wide).
- preprocessor_config.json + preprocess.json + levels_*.npy: LlavaNextImageProcessor (PIL backend)
  output for each image with 42 px tiles and pinpoints that select every grid shape, stored as
  uint8 levels (pixel_values un-normalized × 255, exact: the processor's values are level/255
  normalized) to keep the fixture small.
- tiny/: a random-weight LlavaNextForConditionalGeneration saved as a Hugging Face directory
  (F32 safetensors, config.json, preprocessor_config.json): a 3-layer CLIP vision tower with 42 px
  images and 14 px patches (3 × 3 patches per tile), vision_feature_layer -2, "default" selection,
  a Llama-shaped 2-layer text model with 64 dims.
- features_*.npy: the packed image features (get_image_features: vision tower hidden state -2
  without CLS, the 2-layer GELU projector, pack_image_features' spatial unpad with image_newline,
  base tile first) for each image, float32 [n_image_tokens, 64]; counts in preprocess.json.
- tiny-llm-f32.gguf: the same model's text side in llama.cpp's LLM GGUF layout (llama
  architecture, q/k rows permuted for interleaved rotary pairs as convert_hf_to_gguf.py does), F32;
  a GPT-2 byte-level tokenizer (tests/reference/make_random_llm.py's byte_vocab: id = byte value,
  BOS 317).
- tiny-mmproj-f32.gguf / tiny-mmproj-legacy.gguf: the vision side as llama.cpp's mmproj GGUF
  (convert_image_encoder_to_gguf.py's layout: arch "clip", v.* tower tensors with fc1 named
  ffn_down, post_ln dropped, conv weight F16, mm.0/mm.2 projector, model.image_newline,
  clip.vision.image_grid_pinpoints flattened, mm_patch_merge_type spatial_unpad). The current one
  keeps every layer and writes clip.vision.feature_layer; the legacy one (as the older llava-1.6
  files) drops the last layer and has no feature_layer key.
- logits.json + logits_*.npy: full-sequence logits float32 [T, 160] of
  LlavaNextForConditionalGeneration for token ids with the image token (150) expanded to the
  image's feature count, and greedy continuations (generate, do_sample=False); "run": the greedy
  continuation of the prompt "ab<image>cd" as that tokenizer and eight's splice give it.
"""
import json
import pathlib
import sys

import numpy as np
import torch
from PIL import Image
from transformers import (CLIPVisionConfig, LlamaConfig, LlavaNextConfig,
                          LlavaNextForConditionalGeneration, LlavaNextImageProcessorPil)

ROOT = pathlib.Path(__file__).resolve().parents[2]
try:
    import gguf
except ImportError:  # the torch environment may lack gguf-py: borrow the test venv's (pure Python)
    sys.path += [str(p) for p in (ROOT / ".venv").glob("lib/python3*/site-packages")]
    import gguf
DATA = ROOT / "tests" / "data" / "llava"
TILE = 42
PINPOINTS = [[42, 84], [84, 42], [84, 84], [126, 42], [42, 126]]
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
IMAGES = {"img_wide.png": (60, 40), "img_tall.png": (30, 100), "img_square.png": (50, 50),
          "img_panorama.png": (200, 70), "img_small.png": (7, 5)}
PREPROCESS = {
    "image_processor_type": "LlavaNextImageProcessor", "processor_class": "LlavaNextProcessor",
    "size": {"shortest_edge": TILE}, "crop_size": {"height": TILE, "width": TILE},
    "image_grid_pinpoints": PINPOINTS, "resample": 3, "do_resize": True, "do_center_crop": True,
    "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "do_pad": True,
    "do_convert_rgb": True, "image_mean": MEAN.tolist(), "image_std": STD.tolist(),
}


def make_image(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255.0 / max(w - 1, 1), y * 255.0 / max(h - 1, 1),
                     (x + y) * 127.0 / max(w + h - 2, 1)], axis=-1)
    return Image.fromarray(np.clip(base + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8))


def tiny_model():
    torch.manual_seed(0)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                              num_attention_heads=4, image_size=TILE, patch_size=14,
                              hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=32)
    text = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, vocab_size=320,
                       max_position_embeddings=512, rms_norm_eps=1e-5, rope_theta=10000.0,
                       bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    cfg = LlavaNextConfig(vision_config=vision, text_config=text, image_token_index=300,
                          image_grid_pinpoints=PINPOINTS, vision_feature_layer=-2,
                          vision_feature_select_strategy="default", projector_hidden_act="gelu",
                          tie_word_embeddings=False)
    model = LlavaNextForConditionalGeneration(cfg).eval()
    with torch.no_grad():  # larger than the default init so every part moves the output
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.15)
            elif "norm" in name and name.endswith("weight"):
                p.normal_(1.0, 0.1)
            else:
                p.normal_(0.0, 0.1)
    return model


def permute(w, n_head):
    """HF's rotate-half q/k rows -> GGUF's interleaved pairs (llama.cpp's convert permutation)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2) \
        .reshape(w.shape)


def write_llm_gguf(model, path):
    tc = model.config.text_config
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    lm = "model.language_model." if "model.language_model.embed_tokens.weight" in sd \
        else "language_model.model."
    head = "lm_head.weight" if "lm_head.weight" in sd else "language_model.lm_head.weight"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llava-next-text")
    w.add_context_length(tc.max_position_embeddings)
    w.add_embedding_length(tc.hidden_size)
    w.add_block_count(tc.num_hidden_layers)
    w.add_feed_forward_length(tc.intermediate_size)
    w.add_head_count(tc.num_attention_heads)
    w.add_head_count_kv(tc.num_key_value_heads)
    w.add_layer_norm_rms_eps(tc.rms_norm_eps)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(tc.hidden_size // tc.num_attention_heads)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    # GPT-2 byte-level vocabulary (id = byte value), 5 merges, fillers, 3 specials: 320 tokens.
    sys.path.insert(0, str(ROOT / "tests" / "reference"))
    from make_random_llm import add_byte_tokenizer, byte_vocab
    tokens, types, merges = byte_vocab(extra=tc.vocab_size - 256 - 5 - 3)
    assert len(tokens) == tc.vocab_size
    add_byte_tokenizer(w, tokens, types, merges)
    w.add_tensor("token_embd.weight", sd[lm + "embed_tokens.weight"])
    w.add_tensor("output_norm.weight", sd[lm + "norm.weight"])
    w.add_tensor("output.weight", sd[head])
    for i in range(tc.num_hidden_layers):
        p = f"{lm}layers.{i}."
        w.add_tensor(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"])
        w.add_tensor(f"blk.{i}.attn_q.weight",
                     permute(sd[p + "self_attn.q_proj.weight"], tc.num_attention_heads))
        w.add_tensor(f"blk.{i}.attn_k.weight",
                     permute(sd[p + "self_attn.k_proj.weight"], tc.num_key_value_heads))
        w.add_tensor(f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        w.add_tensor(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        w.add_tensor(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def hf_to_clip_gguf(name):
    """CLIPVisionModel state-dict name -> llama.cpp's mmproj tensor name."""
    name = "v." + name
    for a, b in [("encoder.layers", "blk"), ("embeddings.", ""), ("_proj", ""),
                 ("self_attn.", "attn_"), ("layer_norm", "ln"), ("layernorm", "ln"),
                 ("mlp.fc1", "ffn_down"), ("mlp.fc2", "ffn_up"), ("embedding", "embd"),
                 ("layrnorm", "ln")]:
        name = name.replace(a, b)
    return name


def write_mmproj(model, path, legacy):
    cfg = model.config
    vc = cfg.vision_config
    w = gguf.GGUFWriter(str(path), "clip")
    w.add_bool("clip.has_text_encoder", False)
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.has_llava_projector", True)
    w.add_file_type(0)
    w.add_name("tiny-llava-next")
    w.add_description("image encoder for LLaVA")
    w.add_string("clip.projector_type", "mlp")
    n_layers = vc.num_hidden_layers - 1 if legacy else vc.num_hidden_layers
    w.add_uint32("clip.vision.image_size", vc.image_size)
    w.add_uint32("clip.vision.patch_size", vc.patch_size)
    w.add_uint32("clip.vision.embedding_length", vc.hidden_size)
    w.add_uint32("clip.vision.feed_forward_length", vc.intermediate_size)
    w.add_uint32("clip.vision.projection_dim", vc.projection_dim)
    w.add_uint32("clip.vision.attention.head_count", vc.num_attention_heads)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", vc.layer_norm_eps)
    w.add_uint32("clip.vision.block_count", n_layers)
    w.add_array("clip.vision.image_grid_pinpoints", [v for p in PINPOINTS for v in p])
    w.add_string("clip.vision.image_aspect_ratio", "anyres")
    w.add_string("clip.vision.mm_patch_merge_type", "spatial_unpad")
    if not legacy:
        w.add_array("clip.vision.feature_layer", [vc.num_hidden_layers + cfg.vision_feature_layer + 1])
    w.add_array("clip.vision.image_mean", MEAN.tolist())
    w.add_array("clip.vision.image_std", STD.tolist())
    w.add_bool("clip.use_gelu", vc.hidden_act == "gelu")
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    pre = "model." if "model.image_newline" in sd else ""
    w.add_tensor("mm.0.weight", sd[pre + "multi_modal_projector.linear_1.weight"])
    w.add_tensor("mm.0.bias", sd[pre + "multi_modal_projector.linear_1.bias"])
    w.add_tensor("mm.2.weight", sd[pre + "multi_modal_projector.linear_2.weight"])
    w.add_tensor("mm.2.bias", sd[pre + "multi_modal_projector.linear_2.bias"])
    w.add_tensor("model.image_newline", sd[pre + "image_newline"])
    for name, t in model.model.vision_tower.state_dict().items():
        name = name.removeprefix("vision_model.")
        if name.startswith("post_layernorm") or name.endswith("position_ids"):
            continue
        if legacy and name.startswith(f"encoder.layers.{vc.num_hidden_layers - 1}."):
            continue
        data = t.detach().float().numpy()
        w.add_tensor(hf_to_clip_gguf(name), data.astype(np.float16) if data.ndim == 4 else data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# (image, token ids with one 150 where the image goes): image in the middle, image first.
LOGIT_CASES = [("img_wide.png", [1, 17, 33, 300, 45, 9, 101]),
               ("img_tall.png", [1, 300, 60, 61, 7]),
               ("img_panorama.png", [1, 5, 300, 140, 3, 77, 12])]
# `eight run -p "ab<image>cd"` with the GGUF's byte-level tokenizer: BOS, the bytes, the image.
RUN_CASE = ("img_square.png", "ab<image>cd", [317, 97, 98, 300, 99, 100])


def main():
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "preprocessor_config.json").write_text(json.dumps(PREPROCESS, indent=1) + "\n")
    proc = LlavaNextImageProcessorPil(**{k: v for k, v in PREPROCESS.items()
                                        if k not in ("image_processor_type", "processor_class")})
    model = tiny_model()
    tiny = DATA / "tiny"
    model.save_pretrained(tiny, safe_serialization=True)
    (tiny / "preprocessor_config.json").write_text(json.dumps(PREPROCESS, indent=1) + "\n")
    meta = {"images": []}
    for i, (name, (w, h)) in enumerate(IMAGES.items()):
        make_image(w, h, 100 + i).save(DATA / name)
        im = Image.open(DATA / name)
        out = proc(im, return_tensors="np")
        pixels = out["pixel_values"][0]
        lv = (pixels * STD[None, :, None, None] + MEAN[None, :, None, None]) * 255
        levels = np.round(lv)
        assert np.abs(lv - levels).max() < 1e-3, "processor output is not on the 1/255 grid"
        stem = name[:-4]
        np.save(DATA / f"levels_{stem}.npy", levels.astype(np.uint8))
        with torch.no_grad():
            feats = model.model.get_image_features(
                pixel_values=torch.from_numpy(pixels)[None], image_sizes=torch.tensor([[h, w]]),
                vision_feature_layer=-2, vision_feature_select_strategy="default").pooler_output
        f = feats[0].float().numpy()
        np.save(DATA / f"features_{stem}.npy", f.astype(np.float32))
        meta["images"].append({"file": name, "width": w, "height": h,
                               "levels": f"levels_{stem}.npy", "tiles": int(pixels.shape[0]),
                               "features": f"features_{stem}.npy", "n_image_tokens": int(f.shape[0])})
        print(name, pixels.shape, f.shape)
    (DATA / "preprocess.json").write_text(json.dumps(meta, indent=1) + "\n")

    write_llm_gguf(model, DATA / "tiny-llm-f32.gguf")
    write_mmproj(model, DATA / "tiny-mmproj-f32.gguf", legacy=False)
    write_mmproj(model, DATA / "tiny-mmproj-legacy.gguf", legacy=True)
    cases = []
    for name, ids in LOGIT_CASES:
        im = Image.open(DATA / name)
        out = proc(im, return_tensors="pt")
        n_img = next(c["n_image_tokens"] for c in meta["images"] if c["file"] == name)
        i = ids.index(300)
        full = ids[:i] + [300] * n_img + ids[i + 1:]
        input_ids = torch.tensor([full])
        with torch.no_grad():
            logits = model(input_ids=input_ids, pixel_values=out["pixel_values"],
                           image_sizes=out["image_sizes"]).logits[0].float().numpy()
            gen = model.generate(input_ids=input_ids, pixel_values=out["pixel_values"],
                                 image_sizes=out["image_sizes"], max_new_tokens=6,
                                 do_sample=False, pad_token_id=0, eos_token_id=None)
        stem = name[:-4]
        np.save(DATA / f"logits_{stem}.npy", logits.astype(np.float32))
        cases.append({"image": name, "tokens": ids, "n_positions": len(full),
                      "logits": f"logits_{stem}.npy",
                      "greedy": gen[0, len(full):].tolist()})
        print(name, logits.shape, cases[-1]["greedy"])
    name, prompt, ids = RUN_CASE
    out = proc(Image.open(DATA / name), return_tensors="pt")
    n_img = next(c["n_image_tokens"] for c in meta["images"] if c["file"] == name)
    i = ids.index(300)
    full = torch.tensor([ids[:i] + [300] * n_img + ids[i + 1:]])
    with torch.no_grad():
        gen = model.generate(input_ids=full, pixel_values=out["pixel_values"],
                             image_sizes=out["image_sizes"], max_new_tokens=6, do_sample=False,
                             pad_token_id=0, eos_token_id=None)
    run = {"image": name, "prompt": prompt, "tokens": ids, "greedy": gen[0, full.shape[1]:].tolist()}
    print("run", run)
    (DATA / "logits.json").write_text(json.dumps({"image_token_index": 300, "cases": cases,
                                                  "run": run}, indent=1) + "\n")


if __name__ == "__main__":
    main()
