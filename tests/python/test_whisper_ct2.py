"""CTranslate2 (faster-whisper) Whisper directories: `eight logits -m DIR` against the float64
reference (tests/reference/whisper_ref.py) on the weights as the directory stores them, for every
quantization CTranslate2 writes (written by tests/reference/make_random_ct2_whisper.py, which
follows CTranslate2's serializer and quantizer); split model.bin parts; `eight convert` to
whisper.cpp's format giving the same logits; corrupt directories giving clear errors.

Environment (set by CTest): EIGHT_CLI (the eight binary).
"""
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_random_ct2_whisper as ct2w  # noqa: E402
import whisper_mel_ref  # noqa: E402
import whisper_ref  # noqa: E402
from test_whisper_model import (FLOAT_BOUND, QUANT_BOUND, assert_logits_close, cli,  # noqa: E402
                                eight_logits, prompt, write_wav)

# NMSE bounds against the float64 reference (test_whisper_model's): FLOAT_BOUND 1e-4 for float
# and int16 weights; QUANT_BOUND 1e-3 for int8, whose kernels quantize activations to 8 bits (as
# CTranslate2 does), ~1e-4 typical.

CASES = [  # (id, write_dir arguments, bound)
    ("float32", dict(quantization="float32"), FLOAT_BOUND),
    ("float16-128mel-51866", dict(quantization="float16", n_vocab=51866, n_mels=128, n_state=96,
                                  n_head=3, n_audio_layer=1, n_text_layer=3, preprocessor=True,
                                  vocab_format="txt"), FLOAT_BOUND),
    ("bfloat16-en", dict(quantization="bfloat16", n_vocab=51864, n_head=4), FLOAT_BOUND),
    ("int8", dict(quantization="int8"), QUANT_BOUND),
    ("int8_float16", dict(quantization="int8_float16", vocab_format="txt"), QUANT_BOUND),
    ("int8_bfloat16", dict(quantization="int8_bfloat16", n_state=96, n_head=3), QUANT_BOUND),
    ("int16", dict(quantization="int16"), FLOAT_BOUND),
    ("int8-binary-v3", dict(quantization="int8", version=3), QUANT_BOUND),
]


def reference_logits(tmp_path, hp, eff, tokens, seed):
    samples = write_wav(tmp_path / "a.wav", 0.7, seed=seed)
    mel = whisper_mel_ref.log_mel_spectrogram(samples, whisper_mel_ref.mel_filters(hp["n_mels"]),
                                              2 * hp["n_audio_ctx"])
    return whisper_ref.decoder(hp, eff, tokens, whisper_ref.encoder(hp, eff, mel))


@pytest.mark.parametrize("name,kwargs,bound", CASES, ids=[c[0] for c in CASES])
def test_ct2_matches_reference(tmp_path, name, kwargs, bound):
    cli()
    d = tmp_path / "model"
    hp, eff = ct2w.write_dir(str(d), seed=len(name), **kwargs)
    tokens = prompt(hp["n_vocab"])
    want = reference_logits(tmp_path, hp, eff, tokens, len(name))
    got = eight_logits(d, tmp_path / "a.wav", tokens, tmp_path / "out.npy")
    assert got.shape == want.shape == (len(tokens), hp["n_vocab"])
    assert_logits_close(name, got, want, bound)


FIXTURE = os.path.join(ROOT, "tests", "data", "ct2_whisper")


@pytest.mark.parametrize("quantization", sorted(os.listdir(FIXTURE)))
def test_writer_matches_ctranslate2(quantization):
    """The numpy writer gives the bytes CTranslate2 4.8.5 itself wrote for the same weights
    (tools/reference/ct2_whisper_fixture.py): same variables, scalars, quantization and alias."""
    shape = dict(n_vocab=64, n_audio_ctx=8, n_state=32, n_audio_layer=1, n_text_ctx=8,
                 n_text_layer=1, n_mels=8)
    t = ct2w.random_weights(np.random.default_rng(7), **shape)
    v, quantizable = ct2w.ct2_variables(t, 32, 1, 1, 2)
    ours = ct2w.model_bin(ct2w.quantize(v, quantizable, quantization),
                          [("decoder/projection/weight", "decoder/embeddings/weight")])
    with open(os.path.join(FIXTURE, quantization, "model.bin"), "rb") as f:
        assert ours == f.read()


def test_split_parts_read_as_one_file(tmp_path):
    """model.bin split into byte ranges (as PyPI packages carry it), read where they lie."""
    cli()
    d = tmp_path / "m"
    hp, _ = ct2w.write_dir(str(d), quantization="int8_float16", seed=3)
    write_wav(tmp_path / "a.wav", 0.5, seed=3)
    tokens = prompt(hp["n_vocab"])
    whole = eight_logits(d, tmp_path / "a.wav", tokens, tmp_path / "whole.npy")
    data = (d / "model.bin").read_bytes()
    cuts = [0, 1_000_003, 2_000_001, len(data)]  # odd offsets: tensors straddle the cuts
    for i in range(3):
        (d / f"model.bin.part{i + 1}").write_bytes(data[cuts[i]:cuts[i + 1]])
    (d / "model.bin").unlink()
    parts = eight_logits(d, tmp_path / "a.wav", tokens, tmp_path / "parts.npy")
    assert np.array_equal(whole, parts)


@pytest.mark.parametrize("quantization,ggml_type", [("float16", "f16"), ("float32", "f32"),
                                                    ("int8", "f32")])
def test_convert_to_ggml(tmp_path, quantization, ggml_type):
    """`eight convert DIR -o FILE` writes whisper.cpp's format; eight reads it back to the same
    logits (float weights: identical; int8: dequantized, so within the int8 bound)."""
    cli()
    d = tmp_path / "m"
    hp, eff = ct2w.write_dir(str(d), quantization=quantization, seed=5)
    out = tmp_path / "ggml.bin"
    # The default type follows the directory (f32 for float32, else f16); int8 asks for f32.
    extra = ["--type", "f32"] if quantization == "int8" else []
    r = subprocess.run([cli(), "convert", str(d), "-o", str(out)] + extra, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    rhp, filters, tensors = whisper_ref.read_ggml(str(out))
    assert rhp["ftype"] == (0 if ggml_type == "f32" else 1)
    assert tensors["encoder.conv1.bias"].shape == (hp["n_audio_state"], 1)
    assert np.abs(filters - whisper_mel_ref.mel_filters(hp["n_mels"])).max() < 1e-7
    tokens = prompt(hp["n_vocab"])
    write_wav(tmp_path / "a.wav", 0.5, seed=5)
    a = eight_logits(d, tmp_path / "a.wav", tokens, tmp_path / "a.npy")
    b = eight_logits(out, tmp_path / "a.wav", tokens, tmp_path / "b.npy")
    if quantization == "int8":
        assert whisper_ref.nmse(a, b) <= QUANT_BOUND
        for name, w in eff.items():  # the dequantized weights, exactly as CT2 defines them
            assert np.allclose(tensors[name].reshape(w.shape), w, rtol=1e-6, atol=1e-7), name
    else:
        assert np.array_equal(a, b)


def patch_u32_after(data, name, skip, value):
    """Sets the u32 `skip` bytes after the string `name` in a model.bin."""
    key = struct.pack("<H", len(name) + 1) + name.encode() + b"\0"
    at = data.index(key) + len(key) + skip
    return data[:at] + struct.pack("<I", value) + data[at + 4:]


def test_corrupt_directories_are_errors(tmp_path):
    cli()
    write_wav(tmp_path / "a.wav", 0.3, seed=1)
    good = tmp_path / "good"
    ct2w.write_dir(str(good), quantization="int8", seed=1)
    data = (good / "model.bin").read_bytes()
    beta = "decoder/layer_norm/beta"  # rank 1: u8 rank, u32 dim, u8 type, then the byte count
    cases = {
        "truncated": (lambda d: d[:len(d) // 2], None, "bytes at offset"),
        "version": (lambda d: struct.pack("<I", 99) + d[4:], None, "binary version 99"),
        "spec": (lambda d: d.replace(b"WhisperSpec", b"WhisperSpek", 1), None, "not WhisperSpec"),
        "nul": (lambda d: d.replace(b"WhisperSpec", b"Whisper\0pec", 1), None, "NUL inside"),
        "payload": (lambda d: patch_u32_after(d, beta, 6, 12), None, "bytes of data"),
        "huge-dim": (lambda d: patch_u32_after(d, beta, 1, 0xFFFFFFFF), None, "bytes of data"),
        "trailing": (lambda d: d + b"\0" * 7, None, "bytes follow"),
        "vocab": (None, lambda p: (p / "vocabulary.json").write_text("[\"a\"]"), "text tokens"),
        "config": (None, lambda p: (p / "config.json").write_text("{\"lang_ids\": 3"), "config.json"),
        "mels": (None, lambda p: (p / "preprocessor_config.json").write_text(
            "{\"feature_size\": 128}"), "feature_size 128"),
    }
    for name, (edit_bin, edit_dir, needle) in cases.items():
        d = tmp_path / name
        shutil.copytree(good, d)
        if edit_bin:
            (d / "model.bin").write_bytes(edit_bin(data))
        if edit_dir:
            edit_dir(d)
        r = subprocess.run([cli(), "logits", "-m", str(d), "--audio", str(tmp_path / "a.wav"),
                            "--tokens", "50258", "-o", str(tmp_path / "o.npy")],
                           capture_output=True, text=True)
        assert r.returncode != 0 and needle in r.stderr, (name, r.stderr)

    def drop(stored, aliases):
        del stored["decoder/layer_0/ffn/linear_1/weight_scale"]

    def bad_alias(stored, aliases):
        aliases.append(("decoder/extra", "decoder/nothing"))

    for name, mutate, needle in [("scale", drop, "linear_1/weight_scale' is missing"),
                                 ("alias", bad_alias, "not a variable")]:
        d = tmp_path / name
        ct2w.write_dir(str(d), quantization="int8", seed=1, mutate=mutate)
        r = subprocess.run([cli(), "transcribe", "-m", str(d), str(tmp_path / "a.wav")],
                           capture_output=True, text=True)
        assert r.returncode != 0 and needle in r.stderr, (name, r.stderr)


def test_list_found_and_no_timestamps(tmp_path):
    """A faster-whisper snapshot in the Hugging Face cache is listed by `eight list --found`, and
    `eight transcribe -m SNAPSHOT --no-timestamps` runs on it in place, taking the language and
    task its config.json names."""
    cli()
    repo = tmp_path / "hub" / "models--Systran--faster-whisper-tiny"
    snap = repo / "snapshots" / "0123abcd"
    ct2w.write_dir(str(tmp_path / "m"), quantization="float16", n_audio_ctx=1500, n_text_ctx=448,
                   seed=2, config_extra={"language": "de", "task": "translate"})
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    for f in os.listdir(tmp_path / "m"):  # the hub client's layout: links into blobs/
        shutil.copy(tmp_path / "m" / f, repo / "blobs" / ("blob-" + f))
        os.symlink(os.path.join("..", "..", "blobs", "blob-" + f), snap / f)
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"), HOME=str(tmp_path))
    r = subprocess.run([cli(), "list", "--found", "--json"], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)["found"]
    assert [(m["id"], m["format"], m["path"]) for m in found] == [
        ("hf:Systran/faster-whisper-tiny", "ct2", str(snap))]
    write_wav(tmp_path / "a.wav", 1.0, seed=2)
    out = tmp_path / "out"
    r = subprocess.run([cli(), "transcribe", "-m", str(snap), str(tmp_path / "a.wav"), "-nt",
                        "--max-tokens", "8", "--beam-size", "1", "--no-fallback", "-f",
                        "verbose_json", "-o", str(out)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "-->" not in r.stdout, r.stdout
    with open(str(out) + ".verbose.json") as f:  # language and task from the config.json
        v = json.load(f)
    assert (v["language"], v["task"]) == ("german", "translate"), v


def test_vulkan_encoder(tmp_path):
    """With a GPU the encoder's blocks run there: float CT2 weights (row slices of the fused
    matrices) upload and agree with the CPU; integer weights stay on the CPU (identical)."""
    r = subprocess.run([cli(), "devices", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    dev = next((f"vulkan:{d['index']}" for d in json.loads(r.stdout)["devices"]
                if "llvmpipe" in d["name"]), None)
    if dev is None:
        pytest.skip("SKIPPED: no lavapipe (llvmpipe) Vulkan device; install mesa-vulkan-drivers")
    write_wav(tmp_path / "a.wav", 0.5, seed=4)
    for q, bound in [("float16", 1e-8), ("int8_float16", 0.0)]:
        d = tmp_path / q
        hp, _ = ct2w.write_dir(str(d), quantization=q, seed=4)
        got = {}
        for device in ("cpu", dev):
            out = tmp_path / f"{q}-{device[:3]}.npy"
            r = subprocess.run([cli(), "logits", "-m", str(d), "--audio", str(tmp_path / "a.wav"),
                                "--tokens", "50258,50259,400", "--device", device, "-o", str(out),
                                "-t", "2"], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            got[device] = np.load(out).astype(np.float64)
        assert whisper_ref.nmse(got[dev], got["cpu"]) <= bound, q


def test_plan_bills_copies(tmp_path):
    """`eight plan DIR`: an int8 directory's repacked matrices are billed as copies beside the
    mapping; a float32 one (4-byte names keep no alignment either) too, but fewer."""
    cli()
    plans = {}
    for q in ("float32", "int8"):
        ct2w.write_dir(str(tmp_path / q), quantization=q, seed=6)
        r = subprocess.run([cli(), "plan", str(tmp_path / q), "--json"], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        plans[q] = json.loads(r.stdout)
        assert plans[q]["architecture"] == "whisper" and plans[q]["fits"]
    size = os.path.getsize(tmp_path / "int8" / "model.bin")
    assert plans["int8"]["misaligned_copies"] >= size * 0.9  # every int8 matrix is repacked
    assert plans["float32"]["misaligned_copies"] < plans["float32"]["weights"]
