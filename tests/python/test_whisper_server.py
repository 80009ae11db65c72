"""/v1/audio/transcriptions and /v1/audio/translations driven by the official `openai` client,
plus raw malformed requests: each gets the right status and shape, and the server keeps serving."""
import json
import re

import openai
import pytest
import requests

from server_util import pick_model
from whisper_util import SpeechServer, make_model, speech, write_wav

SPEED = ["--whisper-beam-size", "1", "--whisper-max-tokens", "16"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("whisper-server")
    return {"model": make_model(d / "tiny-random.bin"),
            "wav": write_wav(d / "hello.wav", speech("Hello there, how are you today?"))}


@pytest.fixture(scope="module")
def server(files):
    s = SpeechServer("--whisper", str(files["model"]), *SPEED)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def test_models_lists_the_speech_model(client):
    ids = [m.id for m in client.models.list().data]
    assert ids == ["tiny-random"]


def test_json_and_text(client, files):
    with open(files["wav"], "rb") as f:
        r = client.audio.transcriptions.create(model="whisper-1", file=f)
    assert isinstance(r.text, str)
    with open(files["wav"], "rb") as f:
        t = client.audio.transcriptions.create(model="tiny-random", file=f, response_format="text",
                                               language="en", prompt="Greetings.", temperature=0)
    assert isinstance(t, str)


def test_srt_and_vtt(client, files):
    with open(files["wav"], "rb") as f:
        srt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
    cue = re.compile(r"\d+\n\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d\n[^\n]+\n\n")
    assert "".join(m.group(0) for m in cue.finditer(srt)) == srt
    with open(files["wav"], "rb") as f:
        vtt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="vtt")
    assert vtt.startswith("WEBVTT")


def test_verbose_json_with_words(client, files):
    with open(files["wav"], "rb") as f:
        r = client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json",
            timestamp_granularities=["word", "segment"])
    assert r.language == "english" or isinstance(r.language, str)
    assert r.duration == pytest.approx(len(speech("Hello there, how are you today?")) / 16000,
                                       abs=0.01)
    last = 0.0
    for s in r.segments:
        assert 0 <= s.start <= s.end <= r.duration + 1e-6
        if s.text:
            assert s.start >= last - 1e-6
            last = s.end
    assert r.words is not None
    for w in r.words:
        assert 0 <= w.start <= w.end <= r.duration + 1e-6


def test_translation(client, files):
    with open(files["wav"], "rb") as f:
        r = client.audio.translations.create(model="whisper-1", file=f,
                                             response_format="verbose_json")
    assert isinstance(r.text, str)
    with open(files["wav"], "rb") as f:
        assert isinstance(client.audio.translations.create(model="whisper-1", file=f).text, str)


def check_error(r, status, param):
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["type"] == "invalid_request_error" and body["message"]
    assert body["param"] == param


def test_bad_requests_and_the_server_keeps_serving(server, files, tmp_path):
    url = server.url + "/v1/audio/transcriptions"
    wav = files["wav"].read_bytes()
    check_error(requests.post(url, files={"model": (None, "whisper-1")}), 400, "file")
    check_error(requests.post(url, files={"file": ("x.wav", b"RIFF\x10\x00\x00\x00WAVEjunk")}),
                400, "file")
    check_error(requests.post(url, files={"file": ("x.wav", b"")}), 400, "file")
    check_error(requests.post(url, files={"file": ("a.wav", wav),
                                          "response_format": (None, "docx")}),
                400, "response_format")
    check_error(requests.post(url, files={"file": ("a.wav", wav), "temperature": (None, "hot")}),
                400, "temperature")
    check_error(requests.post(url, files={"file": ("a.wav", wav), "language": (None, "xx")}),
                400, "language")
    check_error(requests.post(url, files={"file": ("a.wav", wav),
                                          "timestamp_granularities[]": (None, "word")}),
                400, "timestamp_granularities[]")
    check_error(requests.post(url, json={"file": "hello.wav"}), 400, "file")
    r = requests.post(url, files={"file": ("a.wav", wav), "model": (None, "gpt-4")})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert server.alive()
    ok = requests.post(url, files={"file": ("a.wav", wav), "response_format": (None, "json")})
    assert ok.status_code == 200 and "text" in ok.json()
    assert requests.get(server.url + "/health").status_code == 200


def test_concurrent_requests_take_turns(server, files):
    # One decoder state at a time: simultaneous requests queue on the model and all succeed.
    import concurrent.futures as cf
    wav = files["wav"].read_bytes()

    def one(i):
        return requests.post(server.url + "/v1/audio/transcriptions",
                             files={"file": (f"{i}.wav", wav), "response_format": (None, "json")})

    with cf.ThreadPoolExecutor(3) as ex:
        results = list(ex.map(one, range(3)))
    assert [r.status_code for r in results] == [200, 200, 200]
    assert len({r.json()["text"] for r in results}) == 1  # same audio, same greedy result


def test_serves_next_to_a_text_model(files):
    s = SpeechServer("-m", pick_model(), "--whisper", str(files["model"]), *SPEED)
    try:
        ids = [m["id"] for m in requests.get(s.url + "/v1/models").json()["data"]]
        assert "tiny-random" in ids and len(ids) == 2
        r = requests.post(s.url + "/v1/audio/transcriptions",
                          files={"file": ("a.wav", files["wav"].read_bytes()),
                                 "response_format": (None, "text")})
        assert r.status_code == 200
        c = requests.post(s.url + "/v1/chat/completions",
                          json={"messages": [{"role": "user", "content": "Hi"}],
                                "max_tokens": 2})
        assert c.status_code == 200, c.text
    finally:
        s.stop()
