"""T5-family text encoders and unigram SentencePiece tokenization, against references made by
tools/reference/make_t5_fixtures.py (tests/data/t5/): unigram models trained by sentencepiece's
own trainer (nmt_nfkc normalization; one with byte_fallback as umT5's), converted to
tokenizer.json by transformers' T5 converter; tiny random T5 (ReLU), T5 v1.1 (gated-gelu) and
umT5 (per-layer bias) encoders and their transformers last_hidden_state.

Bounds (NMSE = |e - ref|² / |ref|²): F32 weights 1e-6 (measured ~1e-13); weights rounded to F16
5e-6 and BF16 5e-4, against the float32 reference: the error is the weight rounding itself
(measured 2e-7 to 4e-7 for F16, 1.5e-5 to 2.2e-5 for BF16)."""
import gzip
import json
import os
import random
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(os.environ.get("EIGHT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
CLI = os.environ.get("EIGHT_CLI", str(ROOT / "build" / "bin" / "eight"))
DATA = ROOT / "tests" / "data" / "t5"
MODELS = {"t5": "tokenizer.json", "t5v11": "spm.model", "umt5": "tokenizer_bytes.json"}
TEXTS = ["Hello world!", "A photo of a cat sitting on a mat, in the style of Van Gogh.",
         "emoji 😀👍🏽 and ✨ sparkles"]
PAD_TO = 48


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("t5tok")
    for f in ("spm.model", "spm_bytes.model", "tokenizer.json", "tokenizer_bytes.json"):
        (d / f).write_bytes(gzip.decompress((DATA / (f + ".gz")).read_bytes()))
    return d


def run(*args, ok=True):
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=120)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def nmse(got, want):
    return float(((got - want) ** 2).sum() / (want ** 2).sum())


def batch_ids(model, texts, tmp_path):
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(texts), encoding="utf-8")
    out = run("tokenize", "-m", model, "--batch", path).stdout.splitlines()
    return [json.loads(line)["ids"] for line in out]


@pytest.mark.parametrize("name", ["spm", "spm_bytes"])
def test_ids_equal_sentencepiece_and_tokenizers(name, tok_dir, tmp_path):
    cases = [c for c in json.loads((DATA / "tokens.json").read_text(encoding="utf-8"))
             if c["model"] == name]
    texts = [c["text"] for c in cases]
    spm_ids = batch_ids(tok_dir / (name + ".model"), texts, tmp_path)
    hf_ids = batch_ids(tok_dir / (name.replace("spm", "tokenizer") + ".json"), texts, tmp_path)
    for c, s, h in zip(cases, spm_ids, hf_ids):
        assert s == c["spm"], c["text"]
        assert h == c["hf"], c["text"]


def random_texts(n, seed):
    rng = random.Random(seed)
    pool = list("abcdefghij klmnop ETAOIN  \t\n.,!?'-0123456789") + [
        "é", "e\u0301", "ü", "ß", "ﬁ", "Ａ", "ｶ", "①", "½", "\u3000", "\u00a0", "\u200b", "漢",
        "한", "ж", "😀", "🏽", "\ufeff", "™", "<", ">", "</s>", "<extra_id_1>", "▁", "  "]
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 40))) for _ in range(n)]


@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer_bytes.json"])
def test_ids_equal_tokenizers_on_random_text(name, tok_dir, tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    ref = tokenizers.Tokenizer.from_file(str(tok_dir / name))
    texts = random_texts(300, seed=len(name))
    got = batch_ids(tok_dir / name, texts, tmp_path)
    for t, g in zip(texts, got):
        assert g == ref.encode(t).ids, repr(t)


def test_tokenize_cli_forms(tok_dir, tmp_path):
    # A T5 directory (tokenizer.json preferred), --json pieces, --no-bos drops </s>.
    d = tmp_path / "model"
    d.mkdir()
    shutil.copy(tok_dir / "spm.model", d / "spiece.model")
    ids = run("tokenize", "-m", d, "Hello world!").stdout.split()
    assert [int(i) for i in ids][-1] == 1
    j = json.loads(run("tokenize", "-m", d, "--json", "--no-bos", "Hello").stdout)
    assert j["pieces"][0].startswith("▁") and 1 not in j["ids"]


def hidden(model, tokenizer, text, *extra, out):
    j = json.loads(run("embed", "-m", model, "--tokenizer", tokenizer, "--text", text, "-o", out,
                       "--json", *extra).stdout)
    return j[0], np.load(out)


@pytest.mark.parametrize("name", list(MODELS))
def test_hidden_states_f32(name, tok_dir, tmp_path):
    ref = np.load(DATA / "hidden.npz")
    for i, text in enumerate(TEXTS):
        want_ids = ref[f"{name}_{i}_ids"].tolist()
        for mode, extra in (("", ()), ("_masked", ("--pad-to", PAD_TO)),
                            ("_unmasked", ("--pad-to", PAD_TO, "--attend-padding"))):
            j, got = hidden(DATA / name, tok_dir / MODELS[name], text, *extra,
                            out=tmp_path / "h.npy")
            assert j["ids"][:len(want_ids)] == want_ids
            assert j["shape"] == list(got.shape) == list(ref[f"{name}_{i}{mode}"].shape)
            assert nmse(got, ref[f"{name}_{i}{mode}"]) <= 1e-6, (name, i, mode)
            if not extra:
                assert np.allclose(np.array(j["last_hidden_state"]).reshape(got.shape), got)


def e4m3_codes(a):
    """float8 e4m3fn codes of the finite values nearest to a (bias 7, no infinities)."""
    mag = [m / 8 * 2.0 ** -6 for m in range(8)]  # subnormals, code 0..7
    mag += [(1 + m / 8) * 2.0 ** (e - 7) for e in range(1, 16) for m in range(8)][:-1]  # to 448
    mag = np.array(mag)
    idx = np.abs(np.abs(a.astype(np.float64))[..., None] - mag).argmin(-1).astype(np.uint8)
    return idx | np.where(a < 0, 0x80, 0).astype(np.uint8), np.where(a < 0, -1, 1) * mag[idx]


def rewrite_safetensors(src, dst, dtype):
    """Copies a float32 safetensors file with its 2-D weights stored as F16, BF16 or F8_E4M3
    ("F8_E4M3" and "F16_OF_F8": the e4m3-rounded values, stored as F8 or exactly as F16)."""
    raw = src.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out, blobs, at = {}, [], 0
    for k, v in header.items():
        if k == "__metadata__":
            out[k] = v
            continue
        a = np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                          dtype=np.float32).reshape(v["shape"])
        if a.ndim == 2 and dtype in ("F8_E4M3", "F16_OF_F8"):
            codes, values = e4m3_codes(a)
            b, dt = ((codes.tobytes(), "F8_E4M3") if dtype == "F8_E4M3"
                     else (values.astype(np.float16).tobytes(), "F16"))
        elif a.ndim == 2 and dtype == "F16":
            b, dt = a.astype(np.float16).tobytes(), "F16"
        elif a.ndim == 2:  # BF16: round to nearest even on the upper 16 bits
            u = a.view(np.uint32).astype(np.uint64)
            b = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16).tobytes()
            dt = "BF16"
        else:
            b, dt = a.tobytes(), "F32"
        out[k] = {"dtype": dt, "shape": v["shape"], "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(out).encode()
    h += b" " * (-len(h) % 8)
    dst.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


@pytest.mark.parametrize("dtype,bound", [("F16", 5e-6), ("BF16", 5e-4)])
@pytest.mark.parametrize("name", ["t5v11", "umt5"])
def test_hidden_states_half_weights(name, dtype, bound, tok_dir, tmp_path):
    ref = np.load(DATA / "hidden.npz")
    d = tmp_path / name
    d.mkdir()
    shutil.copy(DATA / name / "config.json", d / "config.json")
    rewrite_safetensors(DATA / name / "model.safetensors", d / "model.safetensors", dtype)
    for i, text in enumerate(TEXTS):
        _, got = hidden(d, tok_dir / MODELS[name], text, out=tmp_path / "h.npy")
        assert nmse(got, ref[f"{name}_{i}"]) <= bound, (name, dtype, i)


def test_fp8_weights(tok_dir, tmp_path):
    # As t5xxl_fp8_e4m3fn.safetensors: F8_E4M3 weights are decoded a row at a time inside the
    # kernels; the result equals the same rounded values stored exactly as F16 (both expand to
    # the same f32 weights), and stays near the f32 reference (the rounding itself, measured
    # 3e-3 to 5e-3 on this model).
    ref = np.load(DATA / "hidden.npz")
    f8, f16 = tmp_path / "t5_fp8.safetensors", tmp_path / "t5_f16_of_f8.safetensors"
    rewrite_safetensors(DATA / "t5v11" / "model.safetensors", f8, "F8_E4M3")
    rewrite_safetensors(DATA / "t5v11" / "model.safetensors", f16, "F16_OF_F8")
    for i, text in enumerate(TEXTS):
        _, got = hidden(f8, tok_dir / "spm.model", text, out=tmp_path / "h8.npy")
        _, same = hidden(f16, tok_dir / "spm.model", text, out=tmp_path / "h16.npy")
        assert nmse(got, same) <= 1e-12, i
        assert nmse(got, ref[f"t5v11_{i}"]) <= 2e-2, i


def test_single_file_without_config(tok_dir, tmp_path):
    # As t5xxl_fp16.safetensors: the encoder's keys alone; dimensions come from the shapes.
    f = tmp_path / "t5xxl_tiny_fp16.safetensors"
    rewrite_safetensors(DATA / "t5v11" / "model.safetensors", f, "F16")
    ref = np.load(DATA / "hidden.npz")
    _, got = hidden(f, tok_dir / "spm.model", TEXTS[0], out=tmp_path / "h.npy")
    assert nmse(got, ref["t5v11_0"]) <= 5e-6
    r = run("embed", "-m", f, "--text", "x", ok=False)  # no tokenizer beside it
    assert r.returncode == 1 and "--tokenizer" in r.stderr


def test_max_sequence_length_keeps_eos(tok_dir):
    j = json.loads(run("embed", "-m", DATA / "t5", "--tokenizer", tok_dir / "tokenizer.json",
                       "--text", TEXTS[1], "--max-sequence-length", 8, "--json").stdout)[0]
    assert len(j["ids"]) == 8 and j["ids"][-1] == 1 and j["shape"] == [8, 32]


def test_bad_files_give_clear_errors(tok_dir, tmp_path):
    spm = (tok_dir / "spm.model").read_bytes()
    cases = {
        "trunc.model": (spm[:len(spm) // 2], "[spiece]"),
        "garbage.model": (bytes(range(256)) * 4, "[spiece]"),
        "bad.json": (b"{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}", "not Unigram"),
        "broken.json": (b"{\"model\": ", "not valid JSON"),
    }
    for fname, (blob, msg) in cases.items():
        (tmp_path / fname).write_bytes(blob)
        r = run("tokenize", "-m", tmp_path / fname, "hello", ok=False)
        assert r.returncode == 1 and msg in r.stderr, (fname, r.returncode, r.stderr)
    # A config that disagrees with the weights names the tensor and both shapes.
    d = tmp_path / "badcfg"
    d.mkdir()
    cfg = json.loads((DATA / "t5" / "config.json").read_text())
    cfg["d_ff"] = 64
    (d / "config.json").write_text(json.dumps(cfg))
    shutil.copy(DATA / "t5" / "model.safetensors", d / "model.safetensors")
    r = run("embed", "-m", d, "--tokenizer", tok_dir / "tokenizer.json", "--text", "x", ok=False)
    assert r.returncode == 1 and "DenseReluDense.wi.weight" in r.stderr and "[48, 32]" in r.stderr


def test_sharded_checkpoint(tok_dir, tmp_path):
    # model.safetensors.index.json over two shards, as transformers saves large encoders.
    raw = (DATA / "umt5" / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = {k: v for k, v in json.loads(raw[8:8 + n]).items() if k != "__metadata__"}
    names = sorted(header)
    weight_map = {}
    for s, part in enumerate((names[::2], names[1::2])):
        fname = f"model-0000{s + 1}-of-00002.safetensors"
        h, blobs, at = {}, [], 0
        for k in part:
            b = raw[8 + n + header[k]["data_offsets"][0]:8 + n + header[k]["data_offsets"][1]]
            h[k] = {"dtype": header[k]["dtype"], "shape": header[k]["shape"],
                    "data_offsets": [at, at + len(b)]}
            blobs.append(b)
            at += len(b)
            weight_map[k] = fname
        hb = json.dumps(h).encode()
        hb += b" " * (-len(hb) % 8)
        (tmp_path / fname).write_bytes(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    shutil.copy(DATA / "umt5" / "config.json", tmp_path / "config.json")
    _, got = hidden(tmp_path, tok_dir / MODELS["umt5"], TEXTS[2], out=tmp_path / "h.npy")
    assert nmse(got, np.load(DATA / "hidden.npz")["umt5_2"]) <= 1e-6
