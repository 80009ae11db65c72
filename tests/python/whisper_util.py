"""Helpers for the Whisper end-to-end tests: tiny random-weight models in whisper.cpp's format,
speech made with Debian's espeak-ng, long files of speech and silence, and a speech-only server."""
import io
import os
import pathlib
import shutil
import subprocess
import sys
import wave

import numpy as np
import pytest

from server_util import ServeProcess  # noqa: E402

SOURCE = pathlib.Path(os.environ.get("EIGHT_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
CLI = os.environ.get("EIGHT_CLI", str(SOURCE / "build" / "bin" / "eight"))
sys.path.insert(0, str(SOURCE / "tests" / "reference"))
import make_random_whisper  # noqa: E402

RATE = 16000
SENTENCES = ["The quick brown fox jumps over the lazy dog.",
             "Speech recognition turns sound into text.",
             "Every window is thirty seconds long.",
             "Silence between sentences should be skipped."]


def make_model(path, n_vocab=51865, seed=0):
    """A 2-layer, 64-wide model with Whisper's real audio context (1500) and text context (448),
    so windows, timestamps and prompts have their real sizes."""
    make_random_whisper.write_model(str(path), n_vocab=n_vocab, n_audio_ctx=1500, n_state=64,
                                    n_head=2, n_audio_layer=2, n_text_ctx=448, n_text_layer=2,
                                    n_mels=80, ftype="f16", seed=seed)
    return path


def speech(text):
    """espeak-ng speech at 16 kHz, float32 in [-1, 1]; skips loudly when espeak-ng is absent."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("SKIPPED: espeak-ng is not installed (scripts/deps.sh --test installs it)")
    wav = subprocess.run(["espeak-ng", "--stdout", "-s", "170", text], check=True,
                         capture_output=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        sr = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    n = len(x) * RATE // sr
    return np.interp(np.arange(n) * sr / RATE, np.arange(len(x)), x).astype(np.float32)


def write_wav(path, x):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def long_file(path, seconds, silences=(1.0, 4.0, 7.0)):
    """Sentences separated by silences of the given lengths (cycled), cut to `seconds`.
    Returns the path and the list of (start, end) seconds of speech."""
    parts, spans, t, i = [], [], 0, 0
    cache = {}
    while t < seconds * RATE:
        s = cache.setdefault(i % len(SENTENCES), speech(SENTENCES[i % len(SENTENCES)]))
        spans.append((t / RATE, (t + len(s)) / RATE))
        gap = np.zeros(int(RATE * silences[i % len(silences)]), np.float32)
        parts += [s, gap]
        t += len(s) + len(gap)
        i += 1
    x = np.concatenate(parts)[: int(seconds * RATE)]
    return write_wav(path, x), [(a, min(b, seconds)) for a, b in spans if a < seconds]


class SpeechServer(ServeProcess):
    """`eight serve --whisper MODEL` (plus any extra arguments) on a free loopback port."""
