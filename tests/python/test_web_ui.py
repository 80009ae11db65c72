"""The web UI of `eight serve` in a real browser: Debian's headless Chromium driven by Selenium
against `eight serve` with the demo LLM, a tiny BLIP captioner and a tiny Whisper model. Streamed
chat, markdown safety, switching models, an image upload, a transcription (file and microphone),
API errors shown in the page and the API-key prompt. A failing case leaves a screenshot and the
browser console log in build/test-artifacts/."""
import base64
import functools
import json
import pathlib
import re
import shutil
import sys
import time

import pytest

from server_util import CLI, SOURCE, ServeProcess, pick_model
from test_magnet import dirs  # noqa: F401  (the tiny MAGNeT and T5 for the Music tab)

if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
    pytest.skip("SKIPPED LOUDLY: Debian's chromium and chromium-driver are not installed "
                "(scripts/deps.sh --test installs them; CI has them)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver",
                                reason="SKIPPED: selenium is not installed (tools/requirements-test.txt)")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

requests = pytest.importorskip("requests")
sys.path.insert(0, str(SOURCE / "tests" / "reference"))
BLIP = SOURCE / "tests" / "data" / "blip"
DEEPBOORU = SOURCE / "tests" / "data" / "deepbooru"
LLAVA = SOURCE / "tests" / "data" / "llava"
ARTIFACTS = pathlib.Path(CLI).resolve().parents[1] / "test-artifacts"
KEY = "web-ui-test-key"


def need_cli():
    if not pathlib.Path(CLI).exists():
        pytest.skip(f"SKIPPED: {CLI} is not built")


@pytest.fixture(scope="module")
def whisper_model(tmp_path_factory):
    import whisper_util
    return whisper_util.make_model(tmp_path_factory.mktemp("whisper") / "ggml-tiny-random.bin")


@pytest.fixture(scope="module")
def sdxl_model(tmp_path_factory):
    import sdxl_tiny
    return sdxl_tiny.write_pipeline(tmp_path_factory.mktemp("sdxl") / "tiny", dtype="f16")


@pytest.fixture(scope="module")
def clip_model(tmp_path_factory):
    from make_random_clip import make_checkpoint  # tests/reference
    folder = tmp_path_factory.mktemp("clip") / "tiny-clip"
    make_checkpoint(str(folder), preset="tiny", dtype="F32", seed=3)
    return folder


@pytest.fixture(scope="module")
def server(whisper_model, sdxl_model, clip_model, dirs):  # noqa: F811
    need_cli()
    s = ServeProcess("-m", pick_model(), "--caption-model", BLIP / "caption", "--whisper",
                     whisper_model, "--whisper-beam-size", "1", "--whisper-max-tokens", "12",
                     "--image-model", sdxl_model, "--tag-model", DEEPBOORU / "model-tiny.pt",
                     "--clip", clip_model, "--music-model", dirs[0], "--t5", dirs[1],
                     threads=2)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def keyed_server():
    need_cli()
    s = ServeProcess("-m", pick_model(), "--api-key", KEY)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def llava_server():
    need_cli()
    s = ServeProcess("-m", LLAVA / "tiny", threads=2)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser(server, keyed_server, llava_server):
    # Started after the servers and closed before them: a server stops at once only when the
    # browser's keep-alive connections are gone.
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    o = Options()
    o.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream"):
        o.add_argument(arg)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver from Debian, named explicitly: Selenium must not try to download one.
    d = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=o)
    d.set_page_load_timeout(20)
    yield d
    d.quit()


def artifacts_on_failure(f):
    """Saves a screenshot and the browser console log when the test fails, then re-raises."""
    @functools.wraps(f)
    def run(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except BaseException:
            d = kwargs.get("browser")
            if d is not None:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                d.save_screenshot(str(ARTIFACTS / f"{f.__name__}.png"))
                log = "\n".join(json.dumps(e) for e in d.get_log("browser"))
                (ARTIFACTS / f"{f.__name__}.console.log").write_text(log + "\n")
            raise
    return run


def wait(d, cond, timeout=20, what="condition"):
    return WebDriverWait(d, timeout, poll_frequency=0.05).until(lambda _: cond(), message=what)


def open_page(d, url, wait_ready=True):
    """The page with empty local storage, once it has loaded what the server serves."""
    d.get(url + "/")
    d.execute_script("localStorage.clear()")
    d.get(url + "/")
    if wait_ready:
        ready(d)


def fill(d, field, value):
    d.find_element(By.ID, field).clear()
    d.find_element(By.ID, field).send_keys(value)


def ready(d):
    wait(d, lambda: d.execute_script("return document.body.dataset.ready") == "1", what="page ready")


def send(d, text):
    box = d.find_element(By.ID, "prompt")
    box.clear()
    box.send_keys(text)
    d.find_element(By.ID, "send").click()


def last_reply(d, timeout=60):
    """Waits for the last assistant message to finish and returns it."""
    wait(d, lambda: d.execute_script(
        "const m = [...document.querySelectorAll('.msg.assistant')].pop();"
        "return m && m.dataset.state && m.dataset.state !== 'streaming'"), timeout, "reply done")
    return d.find_elements(By.CSS_SELECTOR, ".msg.assistant")[-1]


def pace_streams(d, ms):
    """Wraps the page's fetch(): request bodies are kept in window.sent, and the server's
    event streams reach the page one SSE event per `ms` milliseconds. The demo model writes a
    reply in a few milliseconds, often in one network read; paced, each event gets painted, so
    a test can see the text arrive."""
    d.execute_script("""
      const ms = arguments[0];
      window.sent = [];
      const f = window.originalFetch || (window.originalFetch = window.fetch);
      window.fetch = async (url, o) => {
        if (o && o.body) window.sent.push(o.body);
        const res = await f(url, o);
        if (!(res.headers.get('Content-Type') || '').startsWith('text/event-stream')) return res;
        const reader = res.body.getReader(), dec = new TextDecoder(), enc = new TextEncoder();
        let buf = '';
        const events = [];
        const paced = new ReadableStream({async pull(c) {
          while (!events.length) {
            const {value, done} = await reader.read();
            if (done) { if (buf) c.enqueue(enc.encode(buf)); c.close(); return; }
            buf += dec.decode(value, {stream: true});
            let cut;
            while ((cut = buf.indexOf('\\n\\n')) >= 0) {
              events.push(buf.slice(0, cut + 2));
              buf = buf.slice(cut + 2);
            }
          }
          await new Promise((r) => setTimeout(r, ms));
          c.enqueue(enc.encode(events.shift()));
        }});
        return new Response(paced, {status: res.status, headers: res.headers});
      };""", ms)


def last_reply_chunks(d):
    return d.execute_script("const m = [...document.querySelectorAll('.msg.assistant')].pop();"
                            "return m && m.dataset.chunks ? Number(m.dataset.chunks) : 0")


def stored_messages(d):
    return d.execute_script("return JSON.parse(localStorage.getItem('eight.conversations'))[0]"
                            ".messages")


def error_text(d):
    wait(d, lambda: d.find_element(By.ID, "error").is_displayed(), what="error banner")
    return d.find_element(By.ID, "errorText").text


@artifacts_on_failure
def test_chat_streams_and_keeps_conversations(server, browser):
    d = browser
    open_page(d, server.url)
    status = d.find_element(By.ID, "status").text
    assert "eight-demo (chat" in status and "caption (caption, sees images;" in status
    assert "plan" in status  # the LLM's memory plan
    assert re.search(r"caption \(caption, sees images; [\d.]+ [KMG]?i?B loaded\)", status)
    tabs = [b.text for b in d.find_elements(By.CSS_SELECTOR, "#tabs button") if b.is_displayed()]
    assert tabs == ["Chat", "Images", "Speech", "Vision", "Music"]
    assert re.search(r"magnet-tiny \(music; [\d.]+ [KMG]?i?B loaded\)", status)
    assert not d.find_element(By.ID, "imageLabel").is_displayed()  # the demo LLM is text-only
    d.find_element(By.CSS_SELECTOR, "#settings summary").click()
    for field, value in (("system", "Be brief."), ("temperature", "0"), ("max_tokens", "48"),
                         ("seed", "7")):
        fill(d, field, value)
    # Record the reply's text length at every DOM change: streamed text arrives in steps.
    d.execute_script("""
      window.lengths = [];
      new MutationObserver(() => {
        const m = [...document.querySelectorAll('.msg.assistant .body')].pop();
        if (m) window.lengths.push(m.textContent.length);
      }).observe(document.getElementById('messages'), {childList: true, subtree: true,
                                                      characterData: true});""")
    pace_streams(d, 40)
    send(d, "What is a cat?")
    msg = last_reply(d)
    sent = json.loads(d.execute_script("return window.sent[0]"))
    assert sent == {"model": "eight-demo", "stream": True, "temperature": 0, "top_p": 0.95,
                    "max_tokens": 48, "seed": 7,
                    "messages": [{"role": "system", "content": "Be brief."},
                                 {"role": "user", "content": "What is a cat?"}]}
    assert msg.get_attribute("data-state") == "done"
    assert int(msg.get_attribute("data-chunks")) > 1
    lengths = [n for n in d.execute_script("return window.lengths") if n > 0]
    assert len(set(lengths)) > 1, \
        f"the reply appeared at once, not streamed: {lengths}"
    # The same request through the API gives the same text (greedy): the UI shows what was sent.
    reply = stored_messages(d)[-1]["content"]
    api = requests.post(server.url + "/v1/chat/completions", timeout=60, json={
        "model": "eight-demo", "messages": sent["messages"], "temperature": 0, "top_p": 0.95,
        "max_tokens": 48, "seed": 7}).json()
    assert reply == api["choices"][0]["message"]["content"] and reply.strip()
    # Stop: the reply keeps what arrived and says it was stopped.
    pace_streams(d, 1000)
    send(d, "Tell me more.")
    wait(d, lambda: last_reply_chunks(d) > 0, what="first chunk")
    d.find_element(By.ID, "stop").click()
    msg = last_reply(d)
    assert msg.get_attribute("data-state") == "stopped"
    assert stored_messages(d)[-1]["content"].endswith("*(stopped)*")
    assert msg.find_element(By.CSS_SELECTOR, ".body em").text == "(stopped)"
    assert d.find_element(By.ID, "send").is_enabled()
    # Conversations survive a reload; a new one and a delete update the list.
    d.refresh()
    ready(d)
    assert len(d.find_elements(By.CSS_SELECTOR, "#conversations li")) == 1
    assert d.find_element(By.CSS_SELECTOR, "#conversations li .open").text == "What is a cat?"
    assert not [e for e in d.get_log("browser") if e["source"] == "javascript"]  # no JS errors
    assert "What is a cat?" in d.find_element(By.ID, "messages").text
    assert len(stored_messages(d)) == 4
    d.find_element(By.ID, "newChat").click()
    assert len(d.find_elements(By.CSS_SELECTOR, "#conversations li")) == 2
    d.find_elements(By.CSS_SELECTOR, "#conversations li .delete")[1].click()
    items = d.find_elements(By.CSS_SELECTOR, "#conversations li .open")
    assert [i.text for i in items] == ["New chat"]


@artifacts_on_failure
def test_markdown_is_rendered_without_html(server, browser):
    d = browser
    open_page(d, server.url)
    html = d.execute_script("""
      const md = "Hi **bold** and *it* with `x<y` in snake_case_name\\n\\n- one\\n- two\\n\\n1. first\\n2. second\\n\\n"
        + "<img src=x onerror=\\"window.pwned=1\\"> [ok](https://example.com) [bad](javascript:alert(1))"
        + "\\n\\n```python\\nprint('<b>')\\n```";
      const root = Markdown.render(md);
      document.getElementById('messages').appendChild(root);
      return root.outerHTML;""")
    root = d.find_elements(By.CSS_SELECTOR, "#messages .md")[-1]
    assert root.find_element(By.TAG_NAME, "strong").text == "bold"
    assert [e.text for e in root.find_elements(By.TAG_NAME, "em")] == ["it"]
    assert "snake_case_name" in root.text
    assert root.find_element(By.CSS_SELECTOR, "p code").text == "x<y"
    assert [li.text for li in root.find_elements(By.CSS_SELECTOR, "ul li")] == ["one", "two"]
    assert [li.text for li in root.find_elements(By.CSS_SELECTOR, "ol li")] == ["first", "second"]
    assert not root.find_elements(By.TAG_NAME, "img") and "<img" not in html.replace("&lt;img", "")
    links = root.find_elements(By.TAG_NAME, "a")
    assert [a.get_attribute("href") for a in links] == ["https://example.com/"]
    assert "[bad](javascript:alert(1))" in root.text
    assert root.find_element(By.CSS_SELECTOR, ".codeblock code").text == "print('<b>')"
    assert root.find_element(By.CSS_SELECTOR, ".codeblock button.copy").text == "Copy"
    assert d.execute_script("return window.pwned") is None


@artifacts_on_failure
def test_switch_to_a_vision_model_and_upload_an_image(server, browser):
    d = browser
    open_page(d, server.url)
    expected = json.loads((BLIP / "expected.json").read_text())["images"]["gradient.png"]
    picker = Select(d.find_element(By.ID, "model"))
    assert [o.get_attribute("value") for o in picker.options] == [
        "eight-demo", "ggml-tiny-random", "tiny-clip", "tiny", "model-tiny.pt", "caption",
        "magnet-tiny"]
    assert not picker.options[1].is_enabled()  # speech is not a chat model
    picker.select_by_value("caption")
    wait(d, lambda: d.find_element(By.ID, "imageLabel").is_displayed(), what="image upload")
    d.find_element(By.ID, "image").send_keys(str(BLIP / "gradient.png"))
    wait(d, lambda: d.find_elements(By.CSS_SELECTOR, "#imagePreview img"), what="preview")
    send(d, expected["prompt"]["prompt"])
    msg = last_reply(d)
    assert msg.get_attribute("data-state") == "done"
    assert msg.find_element(By.CSS_SELECTOR, ".who").text == "caption"
    assert msg.find_element(By.CSS_SELECTOR, ".body").text == expected["prompt"]["text"]
    user = stored_messages(d)[0]
    assert user["image"].startswith("data:image/png;base64,")
    # The picker is remembered; back on the text model the upload disappears.
    d.refresh()
    ready(d)
    assert Select(d.find_element(By.ID, "model")).first_selected_option.text.startswith("caption")
    Select(d.find_element(By.ID, "model")).select_by_value("eight-demo")
    assert not d.find_element(By.ID, "imageLabel").is_displayed()
    # The Vision tab captions the same image through the same model.
    d.find_element(By.ID, "tab-vision").click()
    d.find_element(By.ID, "visionFile").send_keys(str(BLIP / "gradient.png"))
    wait(d, lambda: d.find_element(By.ID, "visionPreview").is_displayed(), what="vision preview")
    d.find_element(By.ID, "captionButton").click()
    wait(d, lambda: d.find_elements(By.CSS_SELECTOR, "#visionResult .caption"), what="caption")
    assert d.find_element(By.CSS_SELECTOR, "#visionResult .caption").text == \
        expected["greedy"]["text"]


@artifacts_on_failure
def test_transcribe_a_file_and_a_recording(server, browser, tmp_path):
    import whisper_util
    wav = whisper_util.write_wav(tmp_path / "fox.wav", whisper_util.speech(
        "The quick brown fox jumps over the lazy dog."))
    d = browser
    open_page(d, server.url)
    d.find_element(By.ID, "tab-speech").click()
    d.find_element(By.ID, "audioFile").send_keys(str(wav))
    d.find_element(By.ID, "transcribe").click()
    box = d.find_element(By.ID, "transcript")
    wait(d, lambda: box.get_attribute("data-state") != "running", 60, "transcript")
    assert box.get_attribute("data-state") == "done"
    # The same file through the API: the page shows the server's transcript.
    with open(wav, "rb") as f:
        api = requests.post(server.url + "/v1/audio/transcriptions", timeout=60,
                            files={"file": ("fox.wav", f, "audio/wav")},
                            data={"response_format": "verbose_json"}).json()
    assert box.text == api["text"].strip()
    srt = d.execute_script("""
      const a = document.getElementById('srtLink');
      return a.hidden ? null : fetch(a.href).then(r => r.text());""")
    vtt = d.execute_script(
        "return fetch(document.getElementById('vttLink').href).then(r => r.text())")
    # The page writes the cues the server writes for response_format srt.
    with open(wav, "rb") as f:
        api_srt = requests.post(server.url + "/v1/audio/transcriptions", timeout=60,
                                files={"file": ("fox.wav", f, "audio/wav")},
                                data={"response_format": "srt"}).text
    assert srt == api_srt and srt.count(" --> ") >= 1
    assert vtt == "WEBVTT\n\n" + "".join(
        cue.split("\n", 1)[1].replace(",", ".", 2) + "\n\n" for cue in srt.split("\n\n") if cue)
    # The microphone (Chromium's fake device): MediaRecorder, decoded to WAV in the page.
    d.find_element(By.ID, "audioFile").clear()
    d.find_element(By.ID, "record").click()
    wait(d, lambda: d.find_element(By.ID, "audioInfo").text == "recording…", what="recording")
    time.sleep(1.0)
    d.find_element(By.ID, "record").click()
    wait(d, lambda: d.find_element(By.ID, "audioInfo").text.startswith("recorded"), 10,
         "recorded")
    d.find_element(By.ID, "transcribe").click()
    wait(d, lambda: box.get_attribute("data-state") != "running", 60, "recording transcript")
    assert box.get_attribute("data-state") == "done", error_text(d)


@artifacts_on_failure
def test_api_errors_are_shown(server, browser):
    d = browser
    open_page(d, server.url)
    d.find_element(By.CSS_SELECTOR, "#settings summary").click()
    fill(d, "temperature", "5")
    send(d, "hello")
    assert error_text(d) == "HTTP 400: 'temperature' must be between 0 and 2, got 5"
    assert last_reply(d).get_attribute("data-state") == "error"
    # A caption model without an image: the server's message, word for word.
    fill(d, "temperature", "0")
    Select(d.find_element(By.ID, "model")).select_by_value("caption")
    d.find_element(By.ID, "newChat").click()
    send(d, "no image")
    assert error_text(d).startswith("HTTP 400: 'caption' answers about an image")


@artifacts_on_failure
def test_api_key_prompt(keyed_server, browser):
    d = browser
    # The page and its files load without the key; the API does not answer without it.
    assert requests.get(keyed_server.url + "/", timeout=10).status_code == 200
    assert requests.get(keyed_server.url + "/ui/app.js", timeout=10).status_code == 200
    assert requests.get(keyed_server.url + "/v1/models", timeout=10).status_code == 401
    open_page(d, keyed_server.url, wait_ready=False)
    wait(d, lambda: d.find_element(By.ID, "keyPrompt").is_displayed(), what="key prompt")
    assert d.execute_script("return document.body.dataset.ready") is None
    d.find_element(By.ID, "keyInput").send_keys("wrong")
    d.find_element(By.ID, "keySave").click()
    wait(d, lambda: d.find_element(By.ID, "keyPrompt").is_displayed(), what="prompt again")
    assert error_text(d).startswith("HTTP 401: missing or wrong API key")
    d.find_element(By.ID, "keyInput").send_keys(KEY)
    d.find_element(By.ID, "keySave").click()
    ready(d)
    assert not d.find_element(By.ID, "keyPrompt").is_displayed()
    send(d, "hi")
    assert last_reply(d).get_attribute("data-state") == "done"
    # A key that stops working (here: replaced in storage) brings the prompt back on the next call.
    d.execute_script("localStorage.setItem('eight.apiKey', 'revoked')")
    send(d, "again")
    wait(d, lambda: d.find_element(By.ID, "keyPrompt").is_displayed(), what="prompt after 401")
    assert last_reply(d).get_attribute("data-state") == "error"


@artifacts_on_failure
def test_images_tab_gallery(server, browser):
    d = browser
    open_page(d, server.url)
    d.find_element(By.ID, "tab-images").click()
    d.find_element(By.ID, "imgPrompt").send_keys("a red cube")
    d.find_element(By.ID, "imgNegative").send_keys("blurry")
    Select(d.find_element(By.ID, "imgSize")).select_by_visible_text("64x64")
    d.find_element(By.ID, "imgSteps").send_keys("2")
    d.find_element(By.ID, "imgSeed").send_keys("5")
    d.find_element(By.ID, "imgGenerate").click()
    wait(d, lambda: d.find_elements(By.CSS_SELECTOR, "#gallery .card img"), 60, "image")
    card = d.find_element(By.CSS_SELECTOR, "#gallery .card")
    caption = card.find_element(By.TAG_NAME, "figcaption").text
    for line in ("prompt: a red cube", "negative: blurry", "size: 64x64", "steps: 2", "seed: 5",
                 "model: tiny"):
        assert line in caption
    src = card.find_element(By.TAG_NAME, "img").get_attribute("src")
    api = requests.post(server.url + "/v1/images/generations", timeout=60, json={
        "prompt": "a red cube", "negative_prompt": "blurry", "size": "64x64", "steps": 2,
        "seed": 5}).json()
    assert src == "data:image/png;base64," + api["data"][0]["b64_json"]
    assert d.execute_script("return arguments[0].naturalWidth", card.find_element(
        By.TAG_NAME, "img")) == 64
    # Out-of-range steps: the server's message in the page, and no empty card left behind.
    fill(d, "imgSteps", "500")
    d.find_element(By.ID, "imgGenerate").click()
    assert error_text(d) == "HTTP 400: steps must be between 1 and 150"
    assert len(d.find_elements(By.CSS_SELECTOR, "#gallery .card")) == 1


@artifacts_on_failure
def test_music_tab(server, browser):
    d = browser
    open_page(d, server.url)
    d.find_element(By.ID, "tab-music").click()
    d.find_element(By.ID, "musicPrompt").send_keys("Hello world!")
    fill(d, "musicDuration", "0.5")
    d.find_element(By.ID, "musicSeed").send_keys("3")
    d.find_element(By.ID, "musicGenerate").click()
    wait(d, lambda: d.find_element(By.ID, "musicInfo").get_attribute("data-state") == "done", 30,
         "music")
    assert "seed 3" in d.find_element(By.ID, "musicInfo").text
    # The player plays the API's bytes: 24 frames of 640 samples at 32 kHz.
    wait(d, lambda: d.execute_script("return document.getElementById('musicPlayer').duration > 0"),
         what="audio metadata")
    assert abs(d.execute_script("return document.getElementById('musicPlayer').duration")
               - 0.48) < 0.01
    link = d.find_element(By.ID, "musicLink")
    assert link.is_displayed() and link.get_attribute("download") == "eight-music-3.wav"
    # Past the trained segment: the server's message in the page.
    fill(d, "musicDuration", "30")
    d.find_element(By.ID, "musicGenerate").click()
    assert "'duration' must be more than 0 and at most 10" in error_text(d)


@artifacts_on_failure
def test_vision_tab_tags_and_labels(server, browser):
    d = browser
    open_page(d, server.url)
    d.find_element(By.ID, "tab-vision").click()
    d.find_element(By.ID, "visionFile").send_keys(str(DEEPBOORU / "tall.png"))
    wait(d, lambda: d.find_element(By.ID, "visionPreview").is_displayed(), what="preview")
    fill(d, "tagThreshold", "0.2")
    d.find_element(By.ID, "tagButton").click()
    wait(d, lambda: d.find_elements(By.CSS_SELECTOR, "#visionResult li"), 30, "tags")
    shown = [li.text for li in d.find_elements(By.CSS_SELECTOR, "#visionResult li")]
    image = d.execute_script("return document.getElementById('visionPreview').src")
    api = requests.post(server.url + "/v1/tags", timeout=60,
                        json={"image": image, "threshold": 0.2}).json()
    want = [f"{k}: {v:.3f}" for k, v in api["rating"].items()]
    want += [f"{t['name']}: {t['score']:.3f}" for t in api["general"] + api["character"]]
    assert shown == want and want
    # Zero-shot labels through CLIP: the page lists the API's probabilities in its order.
    fill(d, "labels", "a red square, a blue circle,a tree")
    d.find_element(By.ID, "classifyButton").click()
    wait(d, lambda: "labels (tiny-clip)" in d.find_element(By.ID, "visionResult").text, 30,
         "labels")
    shown = [li.text for li in d.find_elements(By.CSS_SELECTOR, "#visionResult li")]
    api = requests.post(server.url + "/v1/classify", timeout=60, json={
        "image": image, "labels": ["a red square", "a blue circle", "a tree"]}).json()
    assert shown == [f"{x['label']}: {x['probability']:.3f}" for x in api["data"][0]["labels"]]


@artifacts_on_failure
def test_image_to_a_vision_llm(llava_server, browser):
    d = browser
    open_page(d, llava_server.url)
    [option] = Select(d.find_element(By.ID, "model")).options
    assert option.text == "tiny (sees images)"
    d.find_element(By.CSS_SELECTOR, "#settings summary").click()
    for field, value in (("temperature", "0"), ("max_tokens", "3")):
        fill(d, field, value)
    d.find_element(By.ID, "image").send_keys(str(LLAVA / "img_square.png"))
    wait(d, lambda: d.find_elements(By.CSS_SELECTOR, "#imagePreview img"), what="preview")
    send(d, "hi")
    msg = last_reply(d)
    assert msg.get_attribute("data-state") == "done", error_text(d)
    [user, reply] = stored_messages(d)
    url = "data:image/png;base64," + base64.b64encode((LLAVA / "img_square.png").read_bytes()).decode()
    assert user["image"] == url
    # The API with the same image part gives the same (greedy) text.
    api = requests.post(llava_server.url + "/v1/chat/completions", timeout=60, json={
        "model": "tiny", "temperature": 0, "top_p": 0.95, "max_tokens": 3, "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]})
    assert reply["content"] == api.json()["choices"][0]["message"]["content"]
    assert api.json()["usage"]["prompt_tokens"] > 51  # the image's 51 tokens were in the prompt
