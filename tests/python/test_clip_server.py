"""`eight serve --clip`: /v1/embeddings through the official openai client (float and base64),
/v1/images/embeddings (base64, data URL, lists, multipart) and /v1/classify checked against the
CLI's own embeddings of the same inputs; bad input answers 4xx naming the field and the server
keeps serving."""
import base64
import json

import numpy as np
import openai
import pytest
import requests

from clip_util import ClipServer, logit_scale, make_model, need_cli, run, write_images
from server_util import pick_model

pytest.importorskip("PIL", reason="SKIPPED: Pillow is not installed (scripts/deps.sh --test)")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    need_cli()
    d = tmp_path_factory.mktemp("clipserve")
    return {"model": make_model(d / "tiny-clip"), "images": write_images(d / "imgs", 3)}


@pytest.fixture(scope="module")
def server(files):
    s = ClipServer("--clip", files["model"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused")


def cli_embed(files, kind, value):
    out = json.loads(run("embed", "-m", files["model"], f"--{kind}", value, "--json").stdout)
    return np.array(out[0]["embedding"])


def test_models(client):
    assert [m.id for m in client.models.list().data] == ["tiny-clip"]


def test_text_embeddings_openai_client(client, files):
    texts = ["a cat", "a dog on the grass"]
    # Without encoding_format the client asks for base64 and decodes it itself; an explicit
    # "base64" hands the string to the caller.
    for fmt in ("float", None, "base64"):
        kw = {"encoding_format": fmt} if fmt else {}
        r = client.embeddings.create(model="tiny-clip", input=texts, **kw)
        assert [d.index for d in r.data] == [0, 1] and r.model == "tiny-clip"
        assert r.usage.prompt_tokens > 4
        for d, t in zip(r.data, texts):
            got = d.embedding
            if fmt == "base64":
                got = np.frombuffer(base64.b64decode(got), dtype="<f4")
            assert np.allclose(got, cli_embed(files, "text", t), atol=1e-5)
    one = client.embeddings.create(model="tiny-clip", input="a cat")
    assert len(one.data) == 1 and abs(np.linalg.norm(one.data[0].embedding) - 1) < 1e-5


def test_image_embeddings(server, files):
    url = server.url + "/v1/images/embeddings"
    raw = [p.read_bytes() for p in files["images"]]
    want = [cli_embed(files, "image", p) for p in files["images"]]
    b64 = [base64.b64encode(b).decode() for b in raw]
    r = requests.post(url, json={"model": "tiny-clip", "image": b64[0]})
    assert r.status_code == 200, r.text
    assert np.allclose(r.json()["data"][0]["embedding"], want[0], atol=1e-5)
    mime = "image/jpeg" if files["images"][1].suffix == ".jpg" else "image/png"
    r = requests.post(url, json={"image": [f"data:{mime};base64,{b64[1]}", b64[2]],
                                 "encoding_format": "base64"})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [d["index"] for d in data] == [0, 1]
    got = np.frombuffer(base64.b64decode(data[1]["embedding"]), dtype="<f4")
    assert np.allclose(got, want[2], atol=1e-5)
    r = requests.post(url, files=[("file", ("a.png", raw[0])), ("file", ("b.png", raw[1]))])
    assert r.status_code == 200, r.text
    for d, w in zip(r.json()["data"], want):
        assert np.allclose(d["embedding"], w, atol=1e-5)


def test_classify(server, files):
    labels = ["a cat", "a dog", "a car"]
    img = files["images"][0]
    r = requests.post(server.url + "/v1/classify",
                      json={"image": base64.b64encode(img.read_bytes()).decode(),
                            "labels": labels})
    assert r.status_code == 200, r.text
    got = {x["label"]: x["probability"] for x in r.json()["data"][0]["labels"]}
    text = np.array([cli_embed(files, "text", f"a photo of {l}") for l in labels])
    z = np.exp(logit_scale(files["model"])) * (text @ cli_embed(files, "image", img))
    want = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert np.allclose([got[l] for l in labels], want, atol=1e-4)
    # Multipart with a comma-separated list and a template.
    r = requests.post(server.url + "/v1/classify",
                      files={"file": ("x.png", img.read_bytes()), "labels": (None, "cat,dog"),
                             "template": (None, "{}")})
    assert r.status_code == 200, r.text
    assert sorted(x["label"] for x in r.json()["data"][0]["labels"]) == ["cat", "dog"]


def check_error(r, status, param, code=None):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"] and err["param"] == param, err
    if code:
        assert err["code"] == code, err


def test_bad_requests_and_the_server_keeps_serving(server, files):
    img = base64.b64encode(files["images"][0].read_bytes()).decode()
    emb, ims, cls = (server.url + p for p in ("/v1/embeddings", "/v1/images/embeddings",
                                              "/v1/classify"))
    check_error(requests.post(ims, json={"image": "!!not base64!!"}), 400, "image",
                "invalid_base64")
    check_error(requests.post(ims, json={"image": base64.b64encode(b"hello world").decode()}),
                400, "image", "invalid_image")
    check_error(requests.post(ims, json={"image": [img, "AAAA"]}), 400, "image[1]",
                "invalid_image")
    check_error(requests.post(ims, json={"model": "tiny-clip"}), 400, "image")
    check_error(requests.post(ims, json={"image": "https://example.com/cat.jpg"}), 400, "image")
    check_error(requests.post(ims, files={"model": (None, "tiny-clip")}), 400, "file")
    check_error(requests.post(ims, files={"file": ("x.png", b"\x89PNG\r\n\x1a\ntruncated")}),
                400, "file[0]", "invalid_image")
    check_error(requests.post(emb, json={"model": "tiny-clip"}), 400, "input")
    check_error(requests.post(emb, json={"input": [[1, 2, 3]]}), 400, "input[0]")
    check_error(requests.post(emb, json={"input": "x", "encoding_format": "int8"}), 400,
                "encoding_format")
    check_error(requests.post(emb, json={"input": "x", "dimensions": 7}), 400, "dimensions")
    check_error(requests.post(emb, data="{not json", headers={"Content-Type": "application/json"}),
                400, None)
    check_error(requests.post(emb, json={"input": "x", "model": "gpt-4"}), 404, "model",
                "model_not_found")
    check_error(requests.post(cls, json={"image": img}), 400, "labels")
    check_error(requests.post(cls, json={"image": img, "labels": ["a", ""]}), 400, "labels[1]")
    assert server.alive()
    r = requests.post(emb, json={"input": "still here"})
    assert r.status_code == 200 and len(r.json()["data"]) == 1
    assert requests.get(server.url + "/health").status_code == 200


def test_serves_next_to_a_text_model(files):
    s = ClipServer("-m", pick_model(), "--clip", files["model"])
    try:
        ids = [m["id"] for m in requests.get(s.url + "/v1/models").json()["data"]]
        assert "tiny-clip" in ids and len(ids) == 2
        r = requests.post(s.url + "/v1/embeddings", json={"input": "a cat"})
        assert r.status_code == 200
        c = requests.post(s.url + "/v1/chat/completions",
                          json={"messages": [{"role": "user", "content": "hi"}],
                                "max_tokens": 2})
        assert c.status_code == 200, c.text
    finally:
        s.stop()
