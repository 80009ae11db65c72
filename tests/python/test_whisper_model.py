"""`eight logits` on Whisper models against the float64 numpy reference (tests/reference/
whisper_ref.py): random-weight models of several sizes, 80 and 128 mels, every vocabulary
layout and weight type (F32, F16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) written by
tests/reference/make_random_whisper.py; and, when ../shared is present, the reference itself
against whisper.cpp's golden logits.

Environment (set by CTest): EIGHT_CLI (the eight binary), EIGHT_SHARED_DIR (../shared).
"""
import json
import os
import subprocess
import sys
import wave

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import make_random_whisper  # noqa: E402
import whisper_mel_ref  # noqa: E402
import whisper_ref  # noqa: E402

FLOAT_BOUND, QUANT_BOUND = 1e-4, 1e-3


def cli():
    path = os.environ.get("EIGHT_CLI") or os.path.join(ROOT, "build", "bin", "eight")
    if not os.path.exists(path):
        pytest.skip(f"SKIPPED: {path} is not built")
    return path


def shared_dir():
    d = os.environ.get("EIGHT_SHARED_DIR") or os.path.join(ROOT, "..", "shared")
    return d if os.path.isdir(d) else None


def write_wav(path, seconds, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    x = 0.3 * np.sin(2 * np.pi * 300 * t * (1 + t)) + 0.05 * rng.standard_normal(t.size)
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return pcm.astype(np.float64) / 32768.0  # what libsndfile hands eight


def eight_logits(model, audio, tokens, out):
    r = subprocess.run([cli(), "logits", "-m", str(model), "--audio", str(audio), "--tokens",
                        ",".join(map(str, tokens)), "-o", str(out), "-t", "2"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return np.load(out).astype(np.float64)


def prompt(n_vocab):
    multilingual = n_vocab >= 51865
    sot = (50257 if multilingual else 50256) + 1
    # start-of-transcript, a language (or the first special after it), text, the last timestamp
    return [sot, sot + 1, 400, 370, 220, 11, n_vocab - 1, 50]


def assert_logits_close(name, got, want, bound):
    """NMSE within `bound`; with float weights (FLOAT_BOUND) every argmax must agree too."""
    err = whisper_ref.nmse(got, want)
    agree = float(np.mean(got.argmax(1) == want.argmax(1)))
    print(f"{name}: NMSE {err:.3e}, argmax agreement {agree:.2f}")
    assert err <= bound, f"{name}: NMSE {err:.3e} > {bound:.0e}"
    if bound == FLOAT_BOUND:
        assert agree == 1.0


# (id, generator arguments, bound)
CASES = [
    ("f32-80mel-51865", dict(n_state=64, n_head=2, ftype="f32"), FLOAT_BOUND),
    ("f16-128mel-51866", dict(n_vocab=51866, n_mels=128, n_state=96, n_head=3, n_audio_layer=1,
                              n_text_layer=3, ftype="f16"), FLOAT_BOUND),
    ("f16-en-51864-ctx300", dict(n_vocab=51864, n_audio_ctx=300, n_state=64, n_head=4,
                                 ftype="f16"), FLOAT_BOUND),
    ("q8_0", dict(n_state=64, n_head=2, ftype="q8_0"), QUANT_BOUND),
    ("q4_0-128mel", dict(n_mels=128, n_state=64, n_head=2, ftype="q4_0"), QUANT_BOUND),
    ("q4_1", dict(n_state=64, n_head=1, ftype="q4_1"), QUANT_BOUND),
    ("q5_0-51866", dict(n_vocab=51866, n_state=64, n_head=2, ftype="q5_0"), QUANT_BOUND),
    ("q5_1-51864", dict(n_vocab=51864, n_state=96, n_head=3, ftype="q5_1"), QUANT_BOUND),
]


@pytest.mark.parametrize("name,kwargs,bound", CASES, ids=[c[0] for c in CASES])
def test_eight_matches_reference(tmp_path, name, kwargs, bound):
    cli()
    model = tmp_path / "m.bin"
    make_random_whisper.write_model(str(model), seed=len(name), **kwargs)
    samples = write_wav(tmp_path / "a.wav", 0.7, seed=len(name))
    hp, filters, tensors = whisper_ref.read_ggml(str(model))
    tokens = prompt(hp["n_vocab"])
    got = eight_logits(model, tmp_path / "a.wav", tokens, tmp_path / "out.npy")
    mel = whisper_mel_ref.log_mel_spectrogram(samples, filters, 2 * hp["n_audio_ctx"])
    want = whisper_ref.decoder(hp, tensors, tokens, whisper_ref.encoder(hp, tensors, mel))
    assert got.shape == want.shape == (len(tokens), hp["n_vocab"])
    assert_logits_close(name, got, want, bound)


def test_bad_inputs_are_errors(tmp_path):
    model = tmp_path / "m.bin"
    make_random_whisper.write_model(str(model), n_text_ctx=8)
    write_wav(tmp_path / "a.wav", 0.3, seed=1)
    base = [cli(), "logits", "-m", str(model), "-o", str(tmp_path / "o.npy")]
    for extra, needle in [(["--tokens", "1,2"], "--audio"),
                          (["--audio", str(tmp_path / "a.wav"), "--tokens", "51865"], "vocabulary"),
                          (["--audio", str(tmp_path / "a.wav"), "--tokens", ",".join(["1"] * 9)],
                           "context"),
                          (["--audio", str(tmp_path / "missing.wav"), "--tokens", "1"],
                           "missing.wav")]:
        r = subprocess.run(base + extra, capture_output=True, text=True)
        assert r.returncode != 0 and needle in r.stderr, (extra, r.stderr)
    with open(model, "r+b") as f:  # truncate inside the tensors
        f.truncate(os.path.getsize(model) - 1000)
    r = subprocess.run(base + ["--audio", str(tmp_path / "a.wav"), "--tokens", "1"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "[whisper]" in r.stderr, r.stderr


def test_reference_matches_whisper_cpp_golden():
    d = shared_dir()
    js = os.path.join(d, "golden", "whisper", "whisper-tiny-f16.json") if d else None
    if not js or not os.path.exists(js):
        pytest.skip("SKIPPED LOUDLY: ../shared/golden/whisper is absent; reference not checked "
                    "against whisper.cpp")
    with open(js) as f:
        meta = json.load(f)
    gd = os.path.dirname(js)
    hp, filters, tensors = whisper_ref.read_ggml(os.path.join(gd, meta["model"]))
    with wave.open(os.path.join(gd, meta["audio"]), "rb") as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / 32768.0
    mel = whisper_mel_ref.log_mel_spectrogram(samples, filters, 3000)
    tokens = meta["forced_tokens"]
    ours = whisper_ref.decoder(hp, tensors, tokens, whisper_ref.encoder(hp, tensors, mel))
    golden = np.fromfile(os.path.join(gd, meta["logits"]), dtype="<f2").astype(np.float64)
    golden = golden.reshape(len(tokens), meta["n_vocab"])
    err = whisper_ref.nmse(ours, golden)
    print(f"reference vs whisper.cpp: NMSE {err:.3e} (file says {meta['nmse_reference_vs_float64']:.3e})")
    assert err <= 1e-5


def test_bench_reports_encode_and_decode(tmp_path):
    model = tmp_path / "m.bin"
    make_random_whisper.write_model(str(model), n_audio_ctx=30, n_text_ctx=16)
    r = subprocess.run([cli(), "bench", "-m", str(model), "-r", "2", "-n", "4", "-t", "2", "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["encode_median_s"] > 0 and out["encode_cpu_median_s"] > 0
    assert out["decode_tokens_per_s"] > 0 and out["batch_decode_tokens_per_s"] > 0
    assert out["n_gen"] == 4 and out["n_audio_state"] == 64 and out["weight_type"] == "f16"
