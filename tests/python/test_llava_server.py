"""Images in the server's chat completions (LLaVA 1.6): OpenAI image_url content parts with data:
URLs, through continuous batching, on the tiny random LLaVA-NeXT of tests/data/llava (LLM GGUF +
mmproj GGUF). Checks: the image's embeddings occupy exactly its token count in the prompt (51 for
the square image, 24 for the wide one, several per message allowed); concurrent identical requests
give identical greedy answers (batched rows stay aligned); the image changes the answer; http(s)
URLs get a 400 naming the field; a server without a vision encoder answers 400."""
import base64
import concurrent.futures
import json
import os
import pathlib
import urllib.error
import urllib.request

import pytest

from server_util import CLI, ServeProcess

SOURCE = pathlib.Path(os.environ.get("EIGHT_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
DATA = SOURCE / "tests" / "data" / "llava"


def need_cli():
    if not os.path.exists(CLI):
        pytest.skip(f"SKIPPED: {CLI} is not built")


def data_url(name):
    return "data:image/png;base64," + base64.b64encode((DATA / name).read_bytes()).decode()


def post(url, body):
    req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def chat(parts):
    return {"messages": [{"role": "user", "content": parts}], "temperature": 0, "max_tokens": 4}


def image(name):
    return {"type": "image_url", "image_url": {"url": data_url(name)}}


TEXT = {"type": "text", "text": "hi"}


@pytest.fixture(scope="module")
def server():
    if not os.path.exists(CLI):
        pytest.skip(f"SKIPPED: {CLI} is not built")
    s = ServeProcess("-m", DATA / "tiny-llm-f32.gguf", "--mmproj", DATA / "tiny-mmproj-f32.gguf",
                     "--parallel", "2", threads=2)
    yield s
    s.stop()


def test_image_parts(server):
    code, plain = post(server.url, chat([TEXT]))
    assert code == 200, plain
    code, one = post(server.url, chat([image("img_square.png"), TEXT]))
    assert code == 200, one
    assert one["usage"]["prompt_tokens"] == plain["usage"]["prompt_tokens"] + 51
    code, two = post(server.url, chat([image("img_square.png"), TEXT, image("img_wide.png")]))
    assert code == 200, two
    assert two["usage"]["prompt_tokens"] == plain["usage"]["prompt_tokens"] + 51 + 24
    assert one["choices"][0]["message"]["content"] != plain["choices"][0]["message"]["content"]
    # Two at once share forward passes; each must still see its own image rows.
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        outs = list(ex.map(lambda _: post(server.url, chat([image("img_square.png"), TEXT])),
                           range(2)))
    for code, o in outs:
        assert code == 200
        assert o["choices"][0]["message"]["content"] == one["choices"][0]["message"]["content"]


def test_literal_image_text_stays_text(server):
    # A user's own "<image>" is text, not an image's place: the only image place is the part's.
    said = {"type": "text", "text": "what is <image> in html?"}
    code, plain = post(server.url, chat([said]))
    assert code == 200, plain
    code, one = post(server.url, chat([image("img_square.png"), said]))
    assert code == 200, one
    assert one["usage"]["prompt_tokens"] == plain["usage"]["prompt_tokens"] + 51


def test_web_address_refused(server):
    body = chat([TEXT, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}])
    code, err = post(server.url, body)
    assert code == 400 and err["error"]["param"] == "messages[0].content[1].image_url.url"
    code, err = post(server.url, chat([{"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%"}}]))
    assert code == 400 and "base64" in err["error"]["message"]
    code, err = post(server.url, chat([{"type": "image_url", "image_url": {
        "url": "data:image/png;base64," + base64.b64encode(b"not an image").decode()}}]))
    assert code == 400, err


def test_model_that_cannot_see():
    need_cli()
    s = ServeProcess("-m", DATA / "tiny-llm-f32.gguf", threads=2)
    try:
        code, err = post(s.url, chat([image("img_small.png"), TEXT]))
        assert code == 400 and "cannot see" in err["error"]["message"], err
    finally:
        s.stop()
