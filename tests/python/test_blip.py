"""`eight caption`, `eight ask` and `eight serve --caption-model` end to end on the tiny random BLIP
checkpoints of tests/data/blip (made by tools/reference/make_blip_fixtures.py with transformers):
the exact JSON contract, tokens and texts equal to transformers' generate, and bad inputs
(missing model or image, corrupt image, a question for a captioning model) as clear errors."""
import base64
import json
import pathlib
import subprocess

import pytest

from server_util import CLI, SOURCE, ServeProcess

DATA = SOURCE / "tests" / "data" / "blip"
EXPECTED = json.loads((DATA / "expected.json").read_text())
SEP = 3  # [SEP] in the fixture vocabulary


def need_cli():
    if not pathlib.Path(CLI).exists():
        pytest.skip(f"SKIPPED: {CLI} is not built")


def run(*args, check=True):
    need_cli()
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, errors="replace",
                       timeout=120)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def generated(ids, prompt_len=1):
    """transformers' sequence -> the contract's tokens: after the prompt, without the final [SEP]."""
    out = ids[prompt_len:]
    return out[:-1] if out and out[-1] == SEP else out


def test_caption_json_contract_greedy_and_beams():
    imgs = [DATA / "gradient.png", DATA / "noise.png"]
    for extra, key in (([], "greedy"), (["--beams", "3"], "beam3"),
                       (["--beams", "2", "--max-tokens", "30"], "beam2_new30")):
        out = json.loads(run("caption", "-m", DATA / "caption", *imgs, *extra, "--json").stdout)
        assert list(out) == ["captions"]
        assert [c["image"] for c in out["captions"]] == [str(p) for p in imgs]
        for c, p in zip(out["captions"], imgs):
            assert set(c) == {"image", "text", "tokens"}
            want = EXPECTED["images"][p.name][key]
            assert c["tokens"] == generated(want["ids"]), key
            assert c["text"] == want["text"], key


def test_caption_prompt_and_plain_output():
    want = EXPECTED["images"]["gradient.png"]["prompt"]
    out = json.loads(run("caption", "-m", DATA / "caption", DATA / "gradient.png", "--prompt",
                         want["prompt"], "--json").stdout)["captions"][0]
    assert out["text"] == want["text"]
    assert out["tokens"] == generated(want["ids"], len(want["prompt_ids"]) - 1)
    plain = run("caption", "-m", DATA / "caption", DATA / "gradient.png").stdout
    assert plain.strip() == f"{DATA / 'gradient.png'}: " + \
        EXPECTED["images"]["gradient.png"]["greedy"]["text"]
    # --max-tokens caps the tokens after the prompt.
    short = json.loads(run("caption", "-m", DATA / "caption", DATA / "noise.png",
                           "--max-tokens", "2", "--json").stdout)["captions"][0]
    assert short["tokens"] == generated(EXPECTED["images"]["noise.png"]["greedy"]["ids"])[:2]


def test_ask_json_contract():
    for name in ("gradient.png", "noise.png"):
        want = EXPECTED["images"][name]["vqa"]
        out = json.loads(run("ask", "-m", DATA / "vqa", DATA / name, "-q", want["question"],
                             "--json").stdout)
        assert out == {"answer": want["text"], "tokens": generated(want["ids"])}


def test_help_and_bad_inputs(tmp_path):
    for cmd, flags in (("caption", ["--prompt", "--beams", "--max-tokens", "--json"]),
                       ("ask", ["--question", "--max-tokens", "--json"])):
        h = run(cmd, "--help").stdout
        for f in flags:
            assert f in h, (cmd, f)
    r = run("caption", "-m", tmp_path / "nothing", DATA / "gradient.png", check=False)
    assert r.returncode != 0 and "nothing" in r.stderr
    # A corrupt image is reported by name; the other image is still captioned (exit code 1).
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    r = run("caption", "-m", DATA / "caption", bad, DATA / "noise.png", "--json", check=False)
    assert r.returncode == 1 and "broken.png" in r.stderr
    assert [c["image"] for c in json.loads(r.stdout)["captions"]] == [str(DATA / "noise.png")]
    r = run("caption", "-m", DATA / "caption", tmp_path / "missing.jpg", check=False)
    assert r.returncode != 0 and "missing.jpg" in r.stderr
    r = run("ask", "-m", DATA / "caption", DATA / "noise.png", "-q", "what?", check=False)
    assert r.returncode != 0 and "captioning model" in r.stderr
    r = run("ask", "-m", DATA / "vqa", DATA / "noise.png", check=False)
    assert r.returncode != 0 and "question" in r.stderr
    r = run("caption", "-m", DATA / "caption", DATA / "noise.png", "--beams", "0", check=False)
    assert r.returncode != 0 and "--beams" in r.stderr


def data_url(path):
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def test_server_answers_chat_with_blip():
    requests = pytest.importorskip("requests")
    need_cli()
    server = ServeProcess("--caption-model", DATA / "vqa")
    try:
        models = requests.get(server.url + "/v1/models", timeout=30).json()
        assert "vqa" in [m["id"] for m in models["data"]]
        want = EXPECTED["images"]["noise.png"]["vqa"]
        msg = {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": data_url(DATA / "noise.png")}},
            {"type": "text", "text": want["question"]}]}
        r = requests.post(server.url + "/v1/chat/completions",
                          json={"model": "vqa", "messages": [msg]}, timeout=60)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["object"] == "chat.completion" and body["model"] == "vqa"
        assert body["choices"][0]["message"] == {"role": "assistant", "content": want["text"]}
        assert body["choices"][0]["finish_reason"] == "stop"
        assert body["usage"]["completion_tokens"] == len(generated(want["ids"]))
        # Streaming: the same text in content deltas, then [DONE].
        r = requests.post(server.url + "/v1/chat/completions",
                          json={"messages": [msg], "stream": True}, timeout=60)
        chunks = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
        assert chunks[-1] == "[DONE]"
        text = "".join(json.loads(c)["choices"][0]["delta"].get("content", "")
                       for c in chunks[:-1])
        assert text == want["text"]
        # No image, or an unreadable one: 400 naming the problem.
        r = requests.post(server.url + "/v1/chat/completions", timeout=30,
                          json={"model": "vqa", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 400 and "image" in r.json()["error"]["message"]
        broken = {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAAAAAA"}},
            {"type": "text", "text": "what?"}]}
        r = requests.post(server.url + "/v1/chat/completions", timeout=30,
                          json={"model": "vqa", "messages": [broken]})
        assert r.status_code == 400 and "image" in r.json()["error"]["message"]
        assert server.alive()
    finally:
        server.stop()


def test_server_caption_model_beside_an_llm():
    requests = pytest.importorskip("requests")
    need_cli()
    from server_util import pick_model
    server = ServeProcess("-m", pick_model(), "--caption-model", DATA / "caption")
    try:
        ids = [m["id"] for m in requests.get(server.url + "/v1/models", timeout=30).json()["data"]]
        assert "caption" in ids and len(ids) == 2
        want = EXPECTED["images"]["gradient.png"]
        for text, key in (("", "greedy"), ("a picture of", "prompt")):
            content = [{"type": "image_url", "image_url": {"url": data_url(DATA / "gradient.png")}}]
            if text:
                content.append({"type": "text", "text": text})
            r = requests.post(server.url + "/v1/chat/completions", timeout=60, json={
                "model": "caption", "messages": [{"role": "user", "content": content}]})
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"] == want[key]["text"]
        # A chat naming no model still goes to the LLM.
        r = requests.post(server.url + "/v1/chat/completions", timeout=120, json={
            "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        assert r.status_code == 200 and r.json()["model"] != "caption"
    finally:
        server.stop()
