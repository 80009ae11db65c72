"""The web UI's server side without a browser: `GET /` and `/ui/*` from the binary (content types,
ETag revalidation), open even with --api-key while the API stays closed, and /v1/eight/status."""
import pathlib

import pytest

from server_util import CLI, ServeProcess, pick_model

requests = pytest.importorskip("requests")


@pytest.fixture(scope="module")
def server():
    if not pathlib.Path(CLI).exists():
        pytest.skip(f"SKIPPED: {CLI} is not built")
    s = ServeProcess("-m", pick_model(), "--api-key", "k1", "--parallel", "2")
    yield s
    s.stop()


def test_page_and_files_are_served_without_the_key(server):
    page = requests.get(server.url + "/", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-cache"
    for src in ("/ui/style.css", "/ui/markdown.js", "/ui/api.js", "/ui/chat.js", "/ui/media.js",
                "/ui/app.js"):
        assert f'"{src}"' in page.text  # the page links only files the binary serves
        r = requests.get(server.url + src, timeout=10)
        assert r.status_code == 200 and len(r.content) > 500
        want = "text/css" if src.endswith(".css") else "text/javascript"
        assert r.headers["Content-Type"] == want + "; charset=utf-8"
        # The file on disk is what the binary serves (embedded at build time).
        assert r.content == (pathlib.Path(__file__).parents[2] / "web" / src[4:]).read_bytes()
        etag = r.headers["ETag"]
        again = requests.get(server.url + src, headers={"If-None-Match": etag}, timeout=10)
        assert again.status_code == 304 and again.content == b""
        stale = requests.get(server.url + src, headers={"If-None-Match": '"0"'}, timeout=10)
        assert stale.status_code == 200
    # Nothing outside web/ is reachable, and unknown names are not opened by the exemption.
    for path in ("/ui/../CMakeLists.txt", "/ui/", "/ui/nope.js", "/index.html"):
        assert requests.get(server.url + path, timeout=10).status_code in (401, 404), path
    assert requests.post(server.url + "/", timeout=10).status_code == 401


def test_status_endpoint(server):
    assert requests.get(server.url + "/v1/eight/status", timeout=10).status_code == 401
    r = requests.get(server.url + "/v1/eight/status", timeout=10,
                     headers={"Authorization": "Bearer k1"})
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["object"] == "eight.status" and s["auth"] is True
    [m] = s["models"]
    assert m["task"] == "chat" and m["vision"] is False
    mem = m["memory"]
    assert mem["parallel"] == 2 and mem["ctx"] > 0 and mem["verdict"]
    assert mem["host_bytes"] >= mem["weight_bytes"] + mem["kv_bytes"] > 0
    assert s["text"]["slots"] == 2 and s["text"]["kv_total_cells"] == 2 * mem["ctx"]
    assert s["memory"]["host_current_bytes"] >= s["memory"]["heap_bytes"] > 0
    ids = [d["id"] for d in requests.get(server.url + "/v1/models", timeout=10,
                                         headers={"Authorization": "Bearer k1"}).json()["data"]]
    assert ids == [m["id"]]


def test_status_of_a_service_model():
    # Models behind services (here BLIP) report the tracked memory their loading took.
    if not pathlib.Path(CLI).exists():
        pytest.skip(f"SKIPPED: {CLI} is not built")
    blip = pathlib.Path(__file__).parents[2] / "tests" / "data" / "blip" / "caption"
    s = ServeProcess("--caption-model", blip)
    try:
        st = requests.get(s.url + "/v1/eight/status", timeout=10).json()
        [m] = st["models"]
        assert m["task"] == "caption" and m["vision"] is True
        assert 0 < m["memory"]["loaded_bytes"] <= st["memory"]["host_current_bytes"]
    finally:
        s.stop()
