"""`eight serve --music-model`: POST /v1/audio/generations with the tiny random MAGNeT of
tests/data/magnet and the EnCodec of tests/data/encodec (as test_magnet.py runs `eight music` on
them): WAV of the asked duration (cut to whole 3-frame spans) at 32 kHz, seeded reproducibility,
the same audio as `eight music`, FLAC, 400s naming the field, the queue's 503, /v1/models and the status list."""
import io
import wave
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from server_util import ServeProcess
from test_encodec import run as music
from test_magnet import dirs  # noqa: F401  (the model and T5 fixture directories)


@pytest.fixture(scope="module")
def server(dirs):  # noqa: F811
    model, t5 = dirs
    s = ServeProcess("--music-model", model, "--t5", t5)
    yield s
    s.stop()


def generate(server, **body):
    return requests.post(server.url + "/v1/audio/generations", json=body, timeout=60)


def samples(wav_bytes):
    with wave.open(io.BytesIO(wav_bytes)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (32000, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def test_wav_of_the_duration_and_seeded(server, dirs, tmp_path):  # noqa: F811
    r = generate(server, prompt="Hello world!", duration=1, seed=3)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "audio/wav"
    pcm = samples(r.content)
    assert len(pcm) == 48 * 640  # 50 frames cut to 16 spans of 3, 640 samples a frame
    assert np.abs(pcm).max() > 0
    assert generate(server, prompt="Hello world!", duration=1, seed=3).content == r.content
    assert generate(server, prompt="Hello world!", duration=1, seed=4).content != r.content
    half = samples(generate(server, prompt="Hello world!", duration=0.5, seed=3).content)
    assert len(half) == 24 * 640
    # The same path as `eight music` (its default steps and guidance): the same samples.
    model, t5 = dirs
    out = tmp_path / "cli.wav"
    music("-m", model, "--t5", t5, "-p", "Hello world!", "--duration", "1", "--seed", "3", "-o", out)
    assert np.array_equal(samples(out.read_bytes()), pcm)


def test_flac(server):
    r = generate(server, prompt="Hello world!", duration=0.5, seed=3, response_format="flac")
    assert r.status_code == 200 and r.headers["Content-Type"] == "audio/flac"
    assert r.content[:4] == b"fLaC"


@pytest.mark.parametrize("body,param", [
    ({}, "prompt"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": 3}, "prompt"),
    ({"prompt": "x", "duration": 0}, "duration"),
    ({"prompt": "x", "duration": 11}, "duration"),  # past the 10 s trained segment
    ({"prompt": "x", "duration": 0.01}, "duration"),  # shorter than one span
    ({"prompt": "x", "duration": "1"}, "duration"),
    ({"prompt": "x", "seed": -1}, "seed"),
    ({"prompt": "x", "seed": 1.5}, "seed"),
    ({"prompt": "x", "response_format": "mp3"}, "response_format"),
])
def test_bad_fields(server, body, param):
    r = generate(server, **body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert param in r.json()["error"]["message"]


def test_bad_body_and_model(server):
    for raw in (b"nope", b"[1]", b'{"prompt": "x", "duration": 1e5000}'):  # last: overflow
        r = requests.post(server.url + "/v1/audio/generations", data=raw, timeout=10)
        assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    r = generate(server, prompt="x", model="other")
    assert r.status_code == 404 and r.json()["error"]["param"] == "model"
    assert server.alive()


def test_queue_bound(server):
    # One generates and 4 (the default --image-queue) wait: of 8 at once, some are told to retry.
    # Each takes ~0.2 s here, so all 8 arrive long before the queue drains.
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: generate(server, prompt="x", duration=5, seed=1),
                                range(8)))
    codes = sorted(r.status_code for r in answers)
    assert codes.count(200) >= 5 and codes.count(503) >= 1 and set(codes) <= {200, 503}, codes
    busy = next(r for r in answers if r.status_code == 503)
    assert "queue is full" in busy.json()["error"]["message"]
    assert len({r.content for r in answers if r.status_code == 200}) == 1  # same seed, same bytes


def test_models_and_status(server):
    ids = [m["id"] for m in requests.get(server.url + "/v1/models", timeout=10).json()["data"]]
    assert ids == ["magnet-tiny"]
    models = requests.get(server.url + "/v1/eight/status", timeout=10).json()["models"]
    assert [(m["id"], m["task"]) for m in models] == [("magnet-tiny", "music")]
    assert models[0]["memory"]["loaded_bytes"] > 0
