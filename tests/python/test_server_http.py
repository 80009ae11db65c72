"""Raw HTTP abuse of the server: every bad request gets the right status and an OpenAI-shaped
error, and the server keeps serving afterwards. Also a bounded load test on loopback."""
import concurrent.futures as cf
import json
import socket
import time
import urllib.error
import urllib.request

import pytest

from server_util import Server


@pytest.fixture(scope="module")
def server():
    s = Server("--parallel", "4", "--ctx", "256", "--queue", "64", "--max-body", "65536")
    yield s
    s.stop()


def post(server, path, body, headers=None, raw=False):
    data = body if raw else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def get(server, path, headers=None):
    req = urllib.request.Request(server.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def assert_error(status, body, want_status, param=None):
    assert status == want_status, body
    err = json.loads(body)["error"]
    assert set(err) >= {"message", "type", "param", "code"} and err["message"]
    if param is not None:
        assert err["param"] == param, err


def chat(content="hi", **kw):
    return {"messages": [{"role": "user", "content": content}], "max_tokens": 4, **kw}


def still_serving(server):
    status, body, _ = post(server, "/v1/chat/completions", chat(temperature=0))
    assert status == 200, body
    assert server.alive()


@pytest.mark.parametrize("body,param", [
    ({"messages": "hi"}, "messages"),
    ({}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
    (chat(temperature="hot"), "temperature"),
    (chat(temperature=7), "temperature"),
    (chat(max_tokens=-5), "max_tokens"),
    (chat(max_tokens=0), "max_tokens"),
    (chat(max_tokens=1e300), "max_tokens"),
    (chat(max_tokens=123456789012345678901234567890), "max_tokens"),
    (chat(top_p=2), "top_p"),
    (chat(n=3), "n"),
    (chat(stop=["a", "b", "c", "d", "e"]), "stop"),
    (chat(stop=7), "stop"),
    (chat(stream="yes"), "stream"),
    (chat(stream_options={"include_usage": True}), "stream_options"),
    (chat(top_logprobs=5), "top_logprobs"),
    (chat(seed="x"), "seed"),
])
def test_invalid_fields_are_400(server, body, param):
    status, text, _ = post(server, "/v1/chat/completions", body)
    assert_error(status, text, 400, param)


def test_malformed_json(server):
    for raw in [b"{", b"not json", b"[1, 2]", b'{"messages": [}', b""]:
        status, text, _ = post(server, "/v1/chat/completions", raw, raw=True)
        assert_error(status, text, 400)
    still_serving(server)


def test_invalid_utf8(server):
    raw = b'{"messages": [{"role": "user", "content": "\xff\xfe bad"}]}'
    status, text, _ = post(server, "/v1/chat/completions", raw, raw=True)
    assert_error(status, text, 400)


def test_oversized_body_is_413(server):
    status, text, _ = post(server, "/v1/chat/completions", chat("x" * 200000))
    assert_error(status, text, 413)
    still_serving(server)


def test_unknown_path_is_404(server):
    status, text = get(server, "/v1/nothing-here")
    assert_error(status, text, 404)


def test_completions_prompt_types(server):
    assert_error(*post(server, "/v1/completions", {"prompt": 5})[:2], 400, "prompt")
    assert_error(*post(server, "/v1/completions", {"prompt": ["a", "b"]})[:2], 400, "prompt")
    status, text, _ = post(server, "/v1/completions", {"prompt": ["hello"], "max_tokens": 2})
    assert status == 200, text


def test_health_and_metrics(server):
    status, text = get(server, "/health")
    assert status == 200 and json.loads(text)["status"] == "ok"
    still_serving(server)
    status, text = get(server, "/metrics")
    assert status == 200
    for name in ["eight_requests_total", "eight_completion_tokens_total", "eight_tokens_per_second",
                 "eight_queue_depth", "eight_kv_cache_usage_ratio"]:
        assert name in text


def test_request_log_counts_response_bytes(server):
    # The request log names the size of what was sent back, not of what was received.
    status, text = get(server, "/v1/models")
    assert status == 200
    size = len(text.encode())
    deadline = time.time() + 10
    pattern = f"GET /v1/models 200 {size} bytes (request 0 bytes)"
    while time.time() < deadline and not any(pattern in line for line in server.log):
        time.sleep(0.05)
    assert any(pattern in line for line in server.log), "".join(server.log[-20:])
    status, _, _ = post(server, "/v1/completions", {"prompt": "hi", "max_tokens": 2, "stream": True})
    assert status == 200
    deadline = time.time() + 10
    while time.time() < deadline and not any("/v1/completions 200 streamed" in l for l in server.log):
        time.sleep(0.05)
    assert any("POST /v1/completions 200 streamed (request " in l for l in server.log)


def test_slow_client_does_not_block_others(server):
    # A client that sends half a request and stalls must not stop the server answering others.
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
    try:
        still_serving(server)
    finally:
        s.close()


def test_disconnect_mid_stream(server):
    body = json.dumps(chat("Tell me a long story.", max_tokens=200, stream=True)).encode()
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    s.recv(256)  # the headers / first chunk
    s.close()
    time.sleep(0.5)
    still_serving(server)


def test_api_key_required():
    s = Server("--api-key", "sekret", "--ctx", "128", "--parallel", "1")
    try:
        assert_error(*post(s, "/v1/chat/completions", chat())[:2], 401)
        assert_error(*post(s, "/v1/chat/completions", chat(), {"Authorization": "Bearer nope"})[:2], 401)
        status, text, _ = post(s, "/v1/chat/completions", chat(), {"Authorization": "Bearer sekret"})
        assert status == 200, text
        assert get(s, "/health")[0] == 200  # health stays open for load balancers
    finally:
        s.stop()


def test_queue_full_is_503_with_retry_after():
    s = Server("--parallel", "1", "--queue", "0", "--ctx", "256")
    try:
        def one(_):
            return post(s, "/v1/completions", {"prompt": "Once", "max_tokens": 40, "temperature": 0})
        with cf.ThreadPoolExecutor(4) as ex:
            results = list(ex.map(one, range(4)))
        statuses = [r[0] for r in results]
        assert 200 in statuses
        for status, text, headers in results:
            if status == 503:
                assert_error(status, text, 503)
                assert headers.get("Retry-After") == "1"
    finally:
        s.stop()


def test_load_200_requests_16_clients(server):
    rss_before = server.rss_bytes()

    def one(i):
        return post(server, "/v1/chat/completions",
                    chat(f"Request {i}", max_tokens=8, temperature=0.8, seed=i))[0]

    with cf.ThreadPoolExecutor(16) as ex:
        statuses = list(ex.map(one, range(200)))
    assert statuses == [200] * 200
    # The KV cache and scratch are allocated up front (the OS commits KV pages as positions are
    # first written, a few MiB for this model and context): 200 requests must not grow the
    # resident set beyond that.
    growth = server.rss_bytes() - rss_before
    assert growth < 64 * 1024 * 1024, f"resident memory grew by {growth} bytes"
    assert server.alive()
