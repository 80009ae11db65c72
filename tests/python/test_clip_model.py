"""eight's CLIP against the float64 numpy reference (tests/reference/clip_ref.py) on random-weight
checkpoints in the Hugging Face layout (tests/reference/make_random_clip.py): image embeddings from
given pixel tensors (preprocessing excluded) and text embeddings, as cosine similarity per row.
F32/F16/BF16 safetensors must reach 0.9999 (the issue's bar; the tests hold them to 0.999999,
since choosing gelu instead of quick_gelu alone moves these tiny models only to ~0.99997);
eight's Q8_0 GGUF conversion 0.999 against the reference of the unconverted checkpoint. Text ids for the reference come from transformers'
CLIPTokenizer on the checkpoint's vocab.json/merges.txt.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
from clip_ref import CLIPReference  # noqa: E402
from make_random_clip import make_checkpoint  # noqa: E402

TIGHT = 0.999999  # float32 arithmetic on the checkpoint's own weights

TEXTS = [
    "a photo of a cat",
    "A Dog running on the GRASS!!",
    "café naïve 😀 3.14",
    "the quick brown fox jumps over the lazy dog " * 12,  # truncated to 77 tokens
    "x",
]


def binary(name):
    build = os.environ.get("EIGHT_BINARY_DIR", os.path.join(ROOT, "build"))
    path = os.path.join(build, "bin", name)
    if not os.path.exists(path):
        pytest.skip(f"SKIPPED: {path} is not built")
    return path


def cosines(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def eight_embed(model, tmp_path, pixels=None, texts=(), device="cpu"):
    out = tmp_path / "out.npy"
    args = [binary("clip_tool"), "embed", str(model), "--out", str(out), "--device", device]
    if pixels is not None:
        np.save(tmp_path / "pixels.npy", pixels.astype(np.float32))
        args += ["--pixels", str(tmp_path / "pixels.npy")]
    for t in texts:
        args += ["--text", t]
    subprocess.run(args, check=True)
    return np.load(out)


def reference_ids(ckpt, texts):
    transformers = pytest.importorskip("transformers")
    tok = transformers.CLIPTokenizer.from_pretrained(str(ckpt))
    return [tok(t, truncation=True, max_length=77)["input_ids"] for t in texts]


_REFERENCE = {}  # (checkpoint, h, w) -> reference embeddings, shared by tests of one checkpoint


def check_model(ckpt, model, tmp_path, threshold, sizes=None, seed=0, device="cpu"):
    ref = CLIPReference(str(ckpt))
    size = ref.vc["image_size"]
    h, w = sizes or (size, size)
    pixels = np.random.default_rng(seed).standard_normal((2, 3, h, w))
    ours = eight_embed(model, tmp_path, pixels, TEXTS, device)
    key = (str(ckpt), h, w, seed)
    if key not in _REFERENCE:
        _REFERENCE[key] = np.concatenate([ref.embed_images(pixels),
                                          ref.embed_token_ids(reference_ids(ckpt, TEXTS))])
    want = _REFERENCE[key]
    assert ours.shape == want.shape
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-4)
    c = cosines(ours, want)
    assert c.min() >= threshold, f"cosines {c}"
    return c


@pytest.fixture(scope="module")
def f32_checkpoints(tmp_path_factory):
    """One F32 checkpoint per preset, shared by the conversion tests."""
    made = {}

    def get(preset):
        if preset not in made:
            made[preset] = make_checkpoint(str(tmp_path_factory.mktemp(preset)), preset, "F32",
                                           seed=11)
        return made[preset]
    return get


@pytest.mark.parametrize("preset,dtype,act,image_size", [
    ("tiny", "F32", "quick_gelu", None),
    ("tiny", "F16", "quick_gelu", None),
    ("tiny", "BF16", "gelu", None),
    ("small336", "F16", "quick_gelu", None),
    ("tiny", "F32", "quick_gelu", 336),
])
def test_safetensors_matches_reference(tmp_path, preset, dtype, act, image_size):
    ckpt = make_checkpoint(str(tmp_path / "ckpt"), preset, dtype, seed=hash(preset + dtype) % 1000,
                           act=act, image_size=image_size)
    check_model(tmp_path / "ckpt", ckpt, tmp_path, TIGHT)


def test_older_config_pools_at_largest_id(tmp_path):
    make_checkpoint(str(tmp_path / "ckpt"), "tiny", "F32", seed=5, eos_token_id=2)
    check_model(tmp_path / "ckpt", tmp_path / "ckpt", tmp_path, TIGHT)


def test_other_resolution_interpolates_positions(tmp_path):
    # A 224 px checkpoint (7 x 7 patches of 32) fed 288 x 352 pixels: 9 x 11 patches, position
    # embeddings resampled bicubically.
    make_checkpoint(str(tmp_path / "ckpt"), "tiny", "F32", seed=6)
    check_model(tmp_path / "ckpt", tmp_path / "ckpt", tmp_path, TIGHT, sizes=(288, 352))


def eight_cli():
    path = os.environ.get("EIGHT_CLI", os.path.join(ROOT, "build", "bin", "eight"))
    if not os.path.exists(path):
        pytest.skip(f"SKIPPED: {path} is not built")
    return path


@pytest.mark.parametrize("preset,qtype,threshold", [
    ("tiny", "f32", 0.999999),
    ("tiny", "f16", 0.999999),
    ("tiny", "q8_0", 0.999),
    ("small336", "q8_0", 0.999),
    ("small336", "q4_k", 0.99),  # rows of 96/128/192/256: K-quant where 256 divides, else f16
])
def test_converted_gguf_matches_reference(tmp_path, f32_checkpoints, preset, qtype, threshold):
    ckpt = f32_checkpoints(preset)
    out = tmp_path / f"clip-{qtype}.gguf"
    r = subprocess.run([eight_cli(), "convert", "-m", ckpt, "-o", str(out), "--type", qtype],
                       capture_output=True, text=True, check=True)
    assert "tensors" in r.stdout
    check_model(ckpt, out, tmp_path, threshold)


def test_convert_refuses_bad_input(tmp_path):
    r = subprocess.run([eight_cli(), "convert", "-m", str(tmp_path), "-o", str(tmp_path / "x.gguf")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "config.json" in r.stderr
    ckpt = make_checkpoint(str(tmp_path / "ckpt"), "tiny", "F16", seed=3)
    r = subprocess.run([eight_cli(), "convert", "-m", ckpt, "-o", str(tmp_path / "x.gguf"),
                        "--type", "q9_9"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown type" in r.stderr
    with open(os.path.join(ckpt, "model.safetensors"), "r+b") as f:
        f.truncate(5000)
    r = subprocess.run([eight_cli(), "convert", "-m", ckpt, "-o", str(tmp_path / "x.gguf")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "safetensors" in r.stderr and not os.path.exists(tmp_path / "x.gguf")


def write_mmproj(path, ckpt, llava):
    """A vision-only GGUF the way llama.cpp's convert_image_encoder_to_gguf.py lays it out (written
    with the PyPI gguf package): legacy swapped ffn names (fc1 -> ffn_down), f16 matrices and
    conv, squeezed class embedding; a LLaVA projector file drops post_ln and the projection."""
    gguf = pytest.importorskip("gguf")
    ref = CLIPReference(str(ckpt))
    vc, w = ref.vc, ref.w
    g = gguf.GGUFWriter(str(path), arch="clip")
    g.add_bool("clip.has_text_encoder", False)
    g.add_bool("clip.has_vision_encoder", True)
    g.add_bool("clip.has_llava_projector", llava)
    g.add_uint32("clip.vision.image_size", vc["image_size"])
    g.add_uint32("clip.vision.patch_size", vc["patch_size"])
    g.add_uint32("clip.vision.embedding_length", vc["hidden_size"])
    g.add_uint32("clip.vision.feed_forward_length", vc["intermediate_size"])
    g.add_uint32("clip.vision.projection_dim", ref.config["projection_dim"])
    g.add_uint32("clip.vision.attention.head_count", vc["num_attention_heads"])
    g.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    g.add_uint32("clip.vision.block_count", vc["num_hidden_layers"])
    g.add_array("clip.vision.image_mean", [0.48145466, 0.4578275, 0.40821073])
    g.add_array("clip.vision.image_std", [0.26862954, 0.26130258, 0.27577711])
    g.add_bool("clip.use_gelu", False)
    for name, a in w.items():
        if not name.startswith(("vision_model", "visual_projection")) or "position_ids" in name:
            continue
        if llava and (name.startswith("visual_projection") or "post_layernorm" in name):
            continue
        n = (name.replace("vision_model", "v").replace("encoder.layers", "blk")
             .replace("embeddings.", "").replace("_proj", "").replace("self_attn.", "attn_")
             .replace("layer_norm", "ln").replace("layernorm", "ln").replace("mlp.fc1", "ffn_down")
             .replace("mlp.fc2", "ffn_up").replace("embedding", "embd").replace("layrnorm", "ln"))
        if name == "visual_projection.weight":
            n = name
        a = a.squeeze()
        # As that script stores them: 2-D ".weight" and 4-D tensors f16 (the position table
        # too), the rest f32.
        a = a.astype(np.float16) if a.ndim in (2, 4) else a.astype(np.float32)
        g.add_tensor(n, a)
    if llava:
        g.add_tensor("mm.0.weight", np.zeros((8, vc["hidden_size"]), np.float16))
    g.write_header_to_file()
    g.write_kv_data_to_file()
    g.write_tensors_to_file()
    g.close()
    return ref


@pytest.mark.parametrize("llava", [False, True])
def test_mmproj_vision_tower(tmp_path, llava):
    make_checkpoint(str(tmp_path / "ckpt"), "tiny", "F32", seed=21)
    ref = write_mmproj(tmp_path / "mmproj.gguf", tmp_path / "ckpt", llava)
    pixels = np.random.default_rng(2).standard_normal((2, 3, 224, 224))
    ours = eight_embed(tmp_path / "mmproj.gguf", tmp_path, pixels)
    want = ref.embed_images(pixels, post_norm=not llava, project=not llava)
    assert ours.shape == want.shape
    assert cosines(ours, want).min() >= 0.99999  # f16 matrices here, f32 in the reference
    # No text tower: asking for text embeddings is a clear error.
    r = subprocess.run([binary("clip_tool"), "embed", str(tmp_path / "mmproj.gguf"), "--text", "a",
                        "--out", str(tmp_path / "t.npy")], capture_output=True, text=True)
    assert r.returncode != 0 and "no text tower" in r.stderr


def test_broken_checkpoints_fail_clearly(tmp_path):
    import json as _json
    ckpt = make_checkpoint(str(tmp_path / "ckpt"), "tiny", "F32", seed=4)

    def run():
        return subprocess.run([binary("clip_tool"), "embed", ckpt, "--text", "a", "--out",
                               str(tmp_path / "o.npy")], capture_output=True, text=True)

    cfg_path = os.path.join(ckpt, "config.json")
    cfg = _json.load(open(cfg_path))
    bad = _json.loads(_json.dumps(cfg))
    bad["text_config"]["hidden_size"] = 60  # no longer matches the weights (and 60 % 4 == 0)
    _json.dump(bad, open(cfg_path, "w"))
    r = run()
    assert r.returncode == 1 and "token_embedding" in r.stderr and "[604, 60]" in r.stderr, r.stderr
    bad["text_config"]["hidden_size"] = 62  # not divisible by the 4 heads
    _json.dump(bad, open(cfg_path, "w"))
    r = run()
    assert r.returncode == 1 and "heads" in r.stderr, r.stderr
    _json.dump(cfg, open(cfg_path, "w"))
    assert run().returncode == 0
    with open(os.path.join(ckpt, "merges.txt"), "a") as f:
        f.write("zz qq\n")  # a merge whose tokens the vocabulary lacks
    r = run()
    assert r.returncode == 1 and "merge" in r.stderr, r.stderr


def test_config_dict_fields_take_precedence(tmp_path):
    # Early converted checkpoints (openai/clip-vit-*) repeat settings in text_config_dict /
    # vision_config_dict, which transformers reads over text_config / vision_config.
    import json as _json
    ckpt = make_checkpoint(str(tmp_path / "ckpt"), "tiny", "F32", seed=8, act="gelu")
    cfg_path = os.path.join(ckpt, "config.json")
    cfg = _json.load(open(cfg_path))
    cfg["text_config_dict"] = {"hidden_act": "gelu"}
    cfg["vision_config_dict"] = {"hidden_act": "gelu"}
    cfg["text_config"]["hidden_act"] = "quick_gelu"
    cfg["vision_config"]["hidden_act"] = "quick_gelu"
    _json.dump(cfg, open(cfg_path, "w"))
    ref = CLIPReference(ckpt)
    ref.tc["hidden_act"] = ref.vc["hidden_act"] = "gelu"
    pixels = np.random.default_rng(1).standard_normal((1, 3, 224, 224))
    ours = eight_embed(ckpt, tmp_path, pixels, TEXTS[:1])
    want = np.concatenate([ref.embed_images(pixels),
                           ref.embed_token_ids(reference_ids(ckpt, TEXTS[:1]))])
    assert cosines(ours, want).min() >= TIGHT


def lavapipe_device():
    r = subprocess.run([eight_cli(), "devices", "--json"], capture_output=True, text=True)
    for d in json.loads(r.stdout)["devices"]:
        if "llvmpipe" in d["name"]:
            return f"vulkan:{d['index']}"
    pytest.skip("SKIPPED: no lavapipe (llvmpipe) Vulkan device; install mesa-vulkan-drivers")


@pytest.mark.parametrize("preset,dtype,qtype,threshold", [
    ("tiny", "F32", None, TIGHT),
    ("small336", "F16", None, TIGHT),
    ("tiny", "F32", "q8_0", 0.999),
])
def test_encoders_on_the_gpu_match_reference(tmp_path, preset, dtype, qtype, threshold):
    # Both towers' layers on a Vulkan device (lavapipe in CI), held to the CPU's bounds.
    device = lavapipe_device()
    ckpt = make_checkpoint(str(tmp_path / "ckpt"), preset, dtype, seed=21)
    model = ckpt
    if qtype:
        model = str(tmp_path / f"clip-{qtype}.gguf")
        subprocess.run([eight_cli(), "convert", "-m", ckpt, "-o", model, "--type", qtype],
                       check=True, capture_output=True)
    check_model(tmp_path / "ckpt", model, tmp_path, threshold, device=device)
