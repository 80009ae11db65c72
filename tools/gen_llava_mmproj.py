#!/usr/bin/env python3
"""Writes a random-weight LLaVA 1.6 mmproj GGUF shaped like llava-v1.6's (CLIP ViT-L/14 at 336 px,
24 layers, vision_feature_layer -2, the 2-layer GELU projector to the LLM width, image_newline,
llava-v1.6's image_grid_pinpoints) in llama.cpp's layout (convert_image_encoder_to_gguf.py's tensor
names; matrices F16, norms and biases F32), for speed benchmarks without real weights:

    .venv/bin/python tools/gen_llava_mmproj.py --out mmproj-vitl.gguf [--llm-width 4096]
"""
import argparse

import gguf
import numpy as np

PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--llm-width", type=int, default=4096)
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    hidden, ff, heads, size, patch = 1024, 4096, 16, 336, 14
    n_pos = (size // patch) ** 2 + 1

    def mat(*shape, f16=True):
        t = (rng.standard_normal(shape, dtype=np.float32) * 0.02)
        return t.astype(np.float16) if f16 else t

    w = gguf.GGUFWriter(a.out, "clip")
    w.add_bool("clip.has_text_encoder", False)
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.has_llava_projector", True)
    w.add_file_type(1)
    w.add_name("random-llava-v1.6-vit-l-14-336")
    w.add_description("image encoder for LLaVA")
    w.add_string("clip.projector_type", "mlp")
    w.add_uint32("clip.vision.image_size", size)
    w.add_uint32("clip.vision.patch_size", patch)
    w.add_uint32("clip.vision.embedding_length", hidden)
    w.add_uint32("clip.vision.feed_forward_length", ff)
    w.add_uint32("clip.vision.projection_dim", 768)
    w.add_uint32("clip.vision.attention.head_count", heads)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    w.add_uint32("clip.vision.block_count", a.layers)
    w.add_array("clip.vision.image_grid_pinpoints", [v for p in PINPOINTS for v in p])
    w.add_string("clip.vision.image_aspect_ratio", "anyres")
    w.add_string("clip.vision.mm_patch_merge_type", "spatial_unpad")
    w.add_array("clip.vision.feature_layer", [a.layers - 1])
    w.add_array("clip.vision.image_mean", MEAN)
    w.add_array("clip.vision.image_std", STD)
    w.add_bool("clip.use_gelu", False)  # quick_gelu, as CLIP ViT-L/14
    w.add_tensor("mm.0.weight", mat(a.llm_width, hidden))
    w.add_tensor("mm.0.bias", mat(a.llm_width, f16=False))
    w.add_tensor("mm.2.weight", mat(a.llm_width, a.llm_width))
    w.add_tensor("mm.2.bias", mat(a.llm_width, f16=False))
    w.add_tensor("model.image_newline", mat(a.llm_width, f16=False))
    w.add_tensor("v.class_embd", mat(hidden, f16=False))
    w.add_tensor("v.patch_embd.weight", mat(hidden, 3, patch, patch))
    w.add_tensor("v.position_embd.weight", mat(n_pos, hidden, f16=False))
    w.add_tensor("v.pre_ln.weight", np.ones(hidden, np.float32))
    w.add_tensor("v.pre_ln.bias", np.zeros(hidden, np.float32))
    for i in range(a.layers):
        b = f"v.blk.{i}."
        for n in ("attn_q", "attn_k", "attn_v", "attn_out"):
            w.add_tensor(b + n + ".weight", mat(hidden, hidden))
            w.add_tensor(b + n + ".bias", mat(hidden, f16=False))
        for n in ("ln1", "ln2"):
            w.add_tensor(b + n + ".weight", np.ones(hidden, np.float32))
            w.add_tensor(b + n + ".bias", np.zeros(hidden, np.float32))
        # convert_image_encoder_to_gguf.py names fc1 ffn_down and fc2 ffn_up.
        w.add_tensor(b + "ffn_down.weight", mat(ff, hidden))
        w.add_tensor(b + "ffn_down.bias", mat(ff, f16=False))
        w.add_tensor(b + "ffn_up.weight", mat(hidden, ff))
        w.add_tensor(b + "ffn_up.bias", mat(hidden, f16=False))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
