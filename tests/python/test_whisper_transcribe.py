"""`eight transcribe` end to end on tiny random-weight Whisper models: results that do not depend
on model quality (timestamps ordered and inside the audio, windows reaching the end of a
several-minute file, valid SRT/VTT/JSON files, VAD skipping silence, word timestamps, errors)."""
import json
import re
import subprocess

import pytest

from whisper_util import CLI, long_file, make_model, speech, write_wav

# Fast settings: one thread (tiny models spend more on thread hand-offs than on arithmetic),
# greedy, one temperature, few tokens per window.
TIMESTAMP_BEGIN = 50364  # multilingual layout (n_vocab 51865)
FAST = ["-t", "1", "--beam-size", "1", "--no-fallback", "--max-tokens", "24"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("whisper") / "tiny-random.bin")


def transcribe(*args, check=True):
    r = subprocess.run([CLI, "transcribe", *args], capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def check_segments(segments, duration):
    last_end = 0.0
    for i, s in enumerate(segments):
        assert s["id"] == i
        assert 0 <= s["start"] <= s["end"] <= duration + 1e-6, s
        assert s["start"] >= last_end - 1e-6, (s, last_end)
        if s["text"]:
            last_end = s["end"]
        assert all(isinstance(t, int) for t in s["tokens"])
        # The timestamp rules: a segment opens with a timestamp, and they never decrease.
        stamps = [t for t in s["tokens"] if t >= TIMESTAMP_BEGIN]
        assert stamps == sorted(stamps)
        if s["tokens"]:
            assert s["tokens"][0] >= TIMESTAMP_BEGIN
        assert len(s["token_probs"]) == len(s["tokens"])
        assert all(0 <= p <= 1 for p in s["token_probs"])


SRT_CUE = re.compile(r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)\n"
                     r"[^\n]+\n\n")
VTT_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)\n[^\n]+\n\n")


def seconds(h, m, s, ms):
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def test_long_file_windows_cover_the_whole_file(model, tmp_path):
    wav, _ = long_file(tmp_path / "long.wav", 180)
    base = tmp_path / "out"
    r = transcribe("-m", str(model), str(wav), *FAST, "-f", "txt,srt,vtt,json", "-o", str(base))
    # Progress reaches the end of the file: every window was decoded or judged silent.
    assert "[progress] 100%" in r.stderr
    windows = int(re.search(r"(\d+) windows", r.stderr).group(1))
    assert windows >= 6  # 180 s needs at least six 30 s windows
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["duration"] == pytest.approx(180, abs=0.01)
    assert doc["language"]
    check_segments(doc["segments"], doc["duration"])
    spoken = [s for s in doc["segments"] if s["text"]]
    assert spoken and spoken[-1]["end"] > 150  # the last windows produced text too
    # Segment lines on stdout, in order.
    lines = [l for l in r.stdout.splitlines() if l.startswith("[")]
    assert len(lines) == len(spoken)

    srt = (tmp_path / "out.srt").read_text()
    cues = list(SRT_CUE.finditer(srt))
    assert "".join(m.group(0) for m in cues) == srt
    assert [int(m.group(1)) for m in cues] == list(range(1, len(cues) + 1))
    for m in cues:
        assert seconds(*m.groups()[1:5]) <= seconds(*m.groups()[5:9]) <= 180
    vtt = (tmp_path / "out.vtt").read_text()
    assert vtt.startswith("WEBVTT\n\n")
    assert "".join(m.group(0) for m in VTT_CUE.finditer(vtt)) == vtt[len("WEBVTT\n\n"):]
    txt = (tmp_path / "out.txt").read_text()
    assert len(txt.splitlines()) == len(cues)


def test_vad_skips_long_silence(model, tmp_path):
    import numpy as np
    one = speech("Hello there, this is a test.")
    x = np.concatenate([np.zeros(16000, np.float32), one, np.zeros(16000 * 70, np.float32), one,
                        np.zeros(16000, np.float32)])
    wav = write_wav(tmp_path / "gap.wav", x)
    duration = len(x) / 16000
    plain = transcribe("-m", str(model), str(wav), *FAST, "--json", "-q")
    vad = transcribe("-m", str(model), str(wav), *FAST, "--json", "-q", "--vad")
    n_plain = int(re.search(r"(\d+) windows", plain.stderr).group(1))
    n_vad = int(re.search(r"(\d+) windows", vad.stderr).group(1))
    assert n_vad == 2 and n_plain >= 3
    doc = json.loads(vad.stdout)
    check_segments(doc["segments"], duration)
    second = 1 + len(one) / 16000 + 70
    for s in doc["segments"]:
        if s["text"]:  # nothing inside the skipped silence (0.3 s padding around speech)
            assert s["end"] <= 1 + len(one) / 16000 + 0.31 + 1e-6 or s["start"] >= second - 0.31


def test_word_timestamps_and_beam_search(model, tmp_path):
    wav = write_wav(tmp_path / "short.wav", speech("Testing word level timestamps now."))
    r = transcribe("-m", str(model), str(wav), "-t", "1", "--max-tokens", "16", "--json", "-q",
                   "--word-timestamps", "--beam-size", "3", "--best-of", "2")
    doc = json.loads(r.stdout)
    check_segments(doc["segments"], doc["duration"])
    words = [w for s in doc["segments"] for w in s["words"]]
    for s in doc["segments"]:
        for w in s["words"]:
            assert 0 <= w["start"] <= w["end"] <= doc["duration"] + 1e-6
            assert 0 <= w["probability"] <= 1
        text_tokens = [t for t in s["tokens"] if t < 50257]
        assert [t["id"] for t in s["token_timestamps"]] == text_tokens
        for t in s["token_timestamps"]:
            assert 0 <= t["start"] <= t["end"] <= doc["duration"] + 1e-6
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)


def test_translate_prompt_and_language(model, tmp_path):
    wav = write_wav(tmp_path / "s.wav", speech("Bonjour tout le monde."))
    r = transcribe("-m", str(model), str(wav), *FAST, "--json", "-q", "--translate",
                   "--language", "fr", "--prompt", "Glossary: Bonjour.")
    doc = json.loads(r.stdout)
    assert doc["language"] == "fr"
    check_segments(doc["segments"], doc["duration"])


def test_errors(model, tmp_path):
    wav = write_wav(tmp_path / "s.wav", speech("Hi."))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    cases = [
        (["-m", str(tmp_path / "missing.bin"), str(wav)], "missing.bin"),
        (["-m", str(model), str(bad)], "bad.wav"),
        (["-m", str(model), str(wav), "-f", "docx"], "unknown output format"),
        (["-m", str(model), str(wav), "--language", "xx"], "unknown language"),
        (["-m", str(model), str(wav), "--beam-size", "99"], "beam size"),
    ]
    for args, message in cases:
        r = transcribe(*args, check=False)
        assert r.returncode != 0, args
        assert message in r.stderr, (args, r.stderr)
    english = make_model(tmp_path / "tiny.en.bin", n_vocab=51864)
    r = transcribe("-m", str(english), str(wav), "--translate", check=False)
    assert r.returncode != 0 and "English-only" in r.stderr
    # English-only models decode after <|startoftranscript|> alone, in English.
    doc = json.loads(transcribe("-m", str(english), str(wav), *FAST, "--json", "-q").stdout)
    assert doc["language"] == "en"
    for s in doc["segments"]:  # .en layout: text below 50256, timestamps from 50363
        assert all(t < 50256 or t >= 50363 for t in s["tokens"])
        assert not s["tokens"] or s["tokens"][0] >= 50363
