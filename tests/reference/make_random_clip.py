"""Random-weight CLIP checkpoints in the Hugging Face layout, written with numpy alone (no torch).

A checkpoint directory holds config.json (CLIPConfig with text_config / vision_config),
model.safetensors (F32, F16 or BF16; the safetensors layout written here by hand),
vocab.json + merges.txt, and preprocessor_config.json. The tokenizer is OpenAI's merges file
(../shared/golden/clip/clip-bpe-merges.txt) cut to `n_merges` when it is present, else merges
learned here from a small built-in text, so tests run without ../shared; the vocabulary follows
from the merges as in SimpleTokenizer (bytes, bytes + "</w>", merges, <|startoftext|>,
<|endoftext|>).

    python3 make_random_clip.py OUT_DIR --preset tiny --dtype f16 --seed 1
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_bytes import byte_to_unicode  # noqa: E402

PRESETS = {
    # Dimensions are multiples of 32 so every matrix can be Q8_0.
    "tiny": dict(
        text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4),
        vision=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, image_size=224, patch_size=32),
        projection_dim=32),
    "small336": dict(
        text=dict(hidden_size=96, intermediate_size=192, num_hidden_layers=3, num_attention_heads=3),
        vision=dict(hidden_size=128, intermediate_size=256, num_hidden_layers=3,
                    num_attention_heads=4, image_size=336, patch_size=14),
        projection_dim=64),
    "b32": dict(  # ViT-B/32 shapes
        text=dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8),
        vision=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                    num_attention_heads=12, image_size=224, patch_size=32),
        projection_dim=512),
    "l14": dict(  # ViT-L/14 shapes
        text=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
        vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                    num_attention_heads=16, image_size=224, patch_size=14),
        projection_dim=768),
}

CORPUS = ("a photo of a cat . a photo of a dog on the grass . the quick brown fox jumps over the "
          "lazy dog ! there are 3 cats and 12 dogs in the picture , isn't it nice ? "
          "café naïve résumé — emoji 😀 and symbols #@% are here")


def learn_merges(n_merges):
    """Plain BPE training on CORPUS words (byte-level symbols, "</w>" on the last)."""
    enc = byte_to_unicode()
    words = {}
    for w in CORPUS.lower().split():
        syms = [enc[b] for b in w.encode("utf-8")]
        syms[-1] += "</w>"
        words[tuple(syms)] = words.get(tuple(syms), 0) + 1
    merges = []
    while len(merges) < n_merges:
        counts = {}
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + c
        if not counts:
            break
        best = max(sorted(counts), key=lambda p: counts[p])
        merges.append(best)
        new = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        words = new
    return [f"{a} {b}" for a, b in merges]


def make_merges(n_merges, shared_merges=None):
    if shared_merges and os.path.exists(shared_merges):
        with open(shared_merges, encoding="utf-8") as f:
            lines = f.read().split("\n")[1:]
        return [l for l in lines if l][:n_merges]
    return learn_merges(n_merges)


def vocab_from_merges(merges):
    enc = byte_to_unicode()
    v = list(enc.values())
    v += [s + "</w>" for s in v]
    v += ["".join(m.split(" ")) for m in merges]
    v += ["<|startoftext|>", "<|endoftext|>"]
    return v


def to_bf16_bits(x):
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def write_safetensors(path, tensors, dtype):
    """tensors: name -> float32 array. dtype: F32, F16 or BF16 for every tensor."""
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        if dtype == "F32":
            raw = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        elif dtype == "F16":
            raw = np.ascontiguousarray(arr, dtype="<f2").tobytes()
        else:
            raw = to_bf16_bits(arr).astype("<u2").tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def random_weights(rng, cfg, vocab_size):
    t, v, P = cfg["text"], cfg["vision"], cfg["projection_dim"]
    w = {}

    def mat(out, inp):
        return (rng.standard_normal((out, inp)) / np.sqrt(inp)).astype(np.float32)

    def vec(n, scale=0.02):
        return (rng.standard_normal(n) * scale).astype(np.float32)

    def tower(prefix, c):
        D, F = c["hidden_size"], c["intermediate_size"]
        for i in range(c["num_hidden_layers"]):
            p = f"{prefix}.encoder.layers.{i}."
            for ln in ("layer_norm1", "layer_norm2"):
                w[p + ln + ".weight"] = (1 + vec(D, 0.1)).astype(np.float32)
                w[p + ln + ".bias"] = vec(D, 0.05)
            for pr in ("q_proj", "k_proj", "v_proj", "out_proj"):
                w[p + f"self_attn.{pr}.weight"] = mat(D, D)
                w[p + f"self_attn.{pr}.bias"] = vec(D)
            w[p + "mlp.fc1.weight"] = mat(F, D)
            w[p + "mlp.fc1.bias"] = vec(F)
            w[p + "mlp.fc2.weight"] = mat(D, F)
            w[p + "mlp.fc2.bias"] = vec(D)

    Dt = t["hidden_size"]
    w["text_model.embeddings.token_embedding.weight"] = vec((vocab_size, Dt), 0.5)
    w["text_model.embeddings.position_embedding.weight"] = vec((77, Dt), 0.2)
    w["text_model.embeddings.position_ids"] = np.arange(77, dtype=np.float32)[None]
    tower("text_model", t)
    w["text_model.final_layer_norm.weight"] = (1 + vec(Dt, 0.1)).astype(np.float32)
    w["text_model.final_layer_norm.bias"] = vec(Dt, 0.05)

    Dv, p = v["hidden_size"], v["patch_size"]
    grid = v["image_size"] // p
    w["vision_model.embeddings.class_embedding"] = vec(Dv, 0.5)
    w["vision_model.embeddings.patch_embedding.weight"] = (
        rng.standard_normal((Dv, 3, p, p)) / np.sqrt(3 * p * p)).astype(np.float32)
    w["vision_model.embeddings.position_embedding.weight"] = vec((grid * grid + 1, Dv), 0.2)
    w["vision_model.pre_layrnorm.weight"] = (1 + vec(Dv, 0.1)).astype(np.float32)
    w["vision_model.pre_layrnorm.bias"] = vec(Dv, 0.05)
    tower("vision_model", v)
    w["vision_model.post_layernorm.weight"] = (1 + vec(Dv, 0.1)).astype(np.float32)
    w["vision_model.post_layernorm.bias"] = vec(Dv, 0.05)
    w["visual_projection.weight"] = mat(P, Dv)
    w["text_projection.weight"] = mat(P, Dt)
    w["logit_scale"] = np.array(np.log(1 / 0.07), dtype=np.float32)
    return w


def make_checkpoint(out, preset="tiny", dtype="F32", seed=0, n_merges=400, act="quick_gelu",
                    eos_token_id=None, shared_merges=None, image_size=None):
    cfg = json.loads(json.dumps(PRESETS[preset]))
    if image_size:
        cfg["vision"]["image_size"] = image_size
    rng = np.random.default_rng(seed)
    merges = make_merges(n_merges, shared_merges)
    vocab = vocab_from_merges(merges)
    os.makedirs(out, exist_ok=True)
    eos = len(vocab) - 1
    text_config = dict(cfg["text"], vocab_size=len(vocab), max_position_embeddings=77,
                       hidden_act=act, layer_norm_eps=1e-5, bos_token_id=len(vocab) - 2,
                       eos_token_id=eos if eos_token_id is None else eos_token_id)
    vision_config = dict(cfg["vision"], hidden_act=act, layer_norm_eps=1e-5, num_channels=3)
    config = dict(architectures=["CLIPModel"], model_type="clip",
                  projection_dim=cfg["projection_dim"], logit_scale_init_value=2.6592,
                  text_config=text_config, vision_config=vision_config)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    size = cfg["vision"]["image_size"]
    with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
        json.dump(dict(crop_size={"height": size, "width": size}, do_center_crop=True,
                       do_normalize=True, do_resize=True, do_rescale=True,
                       image_mean=[0.48145466, 0.4578275, 0.40821073],
                       image_std=[0.26862954, 0.26130258, 0.27577711], resample=3,
                       rescale_factor=1 / 255, size={"shortest_edge": size},
                       image_processor_type="CLIPImageProcessor"), f, indent=2)
    write_safetensors(os.path.join(out, "model.safetensors"),
                      random_weights(rng, cfg, len(vocab)), dtype.upper())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16", "f32", "f16", "bf16"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--merges", type=int, default=400, help="merges to keep")
    ap.add_argument("--act", default="quick_gelu", choices=["quick_gelu", "gelu"])
    ap.add_argument("--eos-token-id", type=int, default=None,
                    help="2 makes the text tower pool at the largest id (older configs)")
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--shared-merges", default=None, help="OpenAI's merges file to cut from")
    a = ap.parse_args()
    make_checkpoint(a.out, a.preset, a.dtype, a.seed, a.merges, a.act, a.eos_token_id,
                    a.shared_merges, a.image_size)
    print(a.out, file=sys.stderr)


if __name__ == "__main__":
    main()
