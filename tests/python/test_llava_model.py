"""LLaVA-NeXT end to end against transformers: the tiny random-weight LlavaNextForConditionalGeneration
of tests/data/llava/ (tools/reference/make_llava_fixtures.py), its text side as an F32 llama GGUF and
its vision side from the Hugging Face directory (`--mmproj DIR`), through `eight logits --image`.

Pass conditions: one logits row per position of the whole sequence (image positions included, -1
in the JSON tokens), NMSE <= 1e-4 over the whole sequence and at the last position, and the greedy
continuation (argmax, fed back; through the GGUF pair) equal to transformers'
generate(do_sample=False)."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

SOURCE = pathlib.Path(os.environ.get("EIGHT_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
CLI = os.environ.get("EIGHT_CLI", str(SOURCE / "build" / "bin" / "eight"))
DATA = SOURCE / "tests" / "data" / "llava"
CASES = json.loads((DATA / "logits.json").read_text())["cases"]


def need_cli():
    if not os.path.exists(CLI):
        pytest.skip(f"SKIPPED: {CLI} is not built")


MMPROJS = ["tiny", "tiny-mmproj-f32.gguf", "tiny-mmproj-legacy.gguf"]


def logits(tmp_path, image, tokens, mmproj="tiny"):
    out = tmp_path / "logits.npy"
    cmd = [CLI, "logits", "-m", str(DATA / "tiny-llm-f32.gguf"), "--mmproj", str(DATA / mmproj),
           "--image", str(DATA / image), "--tokens", ",".join(map(str, tokens)), "-o", str(out),
           "--json", "-t", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    info = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1])
    return np.load(out).astype(np.float64), info


def nmse(a, b):
    return float(((a - b) ** 2).sum() / (b ** 2).sum())


@pytest.mark.parametrize("mmproj", MMPROJS)
@pytest.mark.parametrize("case", CASES, ids=[c["image"] for c in CASES])
def test_logits_and_greedy(tmp_path, case, mmproj):
    """The HF directory and llama.cpp's mmproj GGUFs (whose patch conv is F16 as llama.cpp
    writes it); -1 in --tokens marks the image's place."""
    need_cli()
    want = np.load(DATA / case["logits"]).astype(np.float64)
    ids = [-1 if t == 300 else t for t in case["tokens"]]
    got, info = logits(tmp_path, case["image"], ids, mmproj)
    assert got.shape == want.shape == (case["n_positions"], 320)
    n_img = case["n_positions"] - (len(case["tokens"]) - 1)
    assert info["tokens"].count(-1) == n_img
    i = ids.index(-1)
    assert info["tokens"][i:i + n_img] == [-1] * n_img  # the image sits where the marker was
    e_all, e_last = nmse(got, want), nmse(got[-1], want[-1])
    print(f"{case['image']}: {n_img} image tokens, NMSE all {e_all:.2e}, last {e_last:.2e}")
    assert e_all <= 1e-4 and e_last <= 1e-4
    if mmproj != "tiny-mmproj-f32.gguf":
        return  # greedy once, through the GGUF pair (each step is one more eight run)
    tokens = list(ids)
    greedy = []
    for _ in case["greedy"]:
        nxt = int(got[-1].argmax())
        greedy.append(nxt)
        tokens.append(nxt)
        got, _ = logits(tmp_path, case["image"], tokens, mmproj)
    assert greedy == case["greedy"]


def test_image_without_marker_goes_first(tmp_path):
    """No image token in the ids: the image follows BOS... here there is no BOS in the ids, so it
    goes first; the row count still covers every position."""
    need_cli()
    got, info = logits(tmp_path, "img_small.png", [17, 33])
    assert info["tokens"][-2:] == [17, 33] and info["tokens"][:-2] == [-1] * (len(got) - 2)


def test_bad_inputs(tmp_path):
    need_cli()
    base = [CLI, "logits", "-m", str(DATA / "tiny-llm-f32.gguf"), "-o", str(tmp_path / "o.npy")]
    r = subprocess.run(base + ["--tokens", "1,2", "--image", str(DATA / "img_small.png")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--mmproj" in r.stderr
    r = subprocess.run(base + ["--tokens", "1,-1,-1", "--image", str(DATA / "img_small.png"),
                               "--mmproj", str(DATA / "tiny")], capture_output=True, text=True)
    assert r.returncode != 0 and "image places" in r.stderr
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    r = subprocess.run(base + ["--tokens", "1,-1", "--image", str(tmp_path / "bad.png"),
                               "--mmproj", str(DATA / "tiny")], capture_output=True, text=True)
    assert r.returncode != 0 and "bad.png" in r.stderr


def test_run_prompt_with_image_marker(tmp_path):
    """`eight run -p "ab<image>cd" --image` through the GGUF pair: the literal <image> is the
    image's place (BOS, "a", "b", the image, "c", "d"), and greedy sampling gives transformers'
    tokens for the same sequence."""
    need_cli()
    case = json.loads((DATA / "logits.json").read_text())["run"]
    cmd = [CLI, "run", "-m", str(DATA / "tiny-llm-f32.gguf"), "--mmproj",
           str(DATA / "tiny-mmproj-f32.gguf"), "--image", str(DATA / case["image"]), "-p",
           case["prompt"], "--temp", "0", "-n", str(len(case["greedy"])), "--json", "-t", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    prompt = out["prompt_tokens"]
    i = case["tokens"].index(300)
    n_img = len(prompt) - (len(case["tokens"]) - 1)
    assert prompt == case["tokens"][:i] + [-1] * n_img + case["tokens"][i + 1:]
    assert out["tokens"] == case["greedy"]


def test_chat_image_commands(tmp_path):
    """`eight chat --image` answers with the image in the first turn; `/image PATH` attaches one
    to the next turn (a missing file is reported and the chat goes on)."""
    need_cli()
    base = [CLI, "chat", "-m", str(DATA / "tiny-llm-f32.gguf"), "--mmproj",
            str(DATA / "tiny-mmproj-f32.gguf"), "--temp", "0", "-n", "3", "-t", "2"]
    r = subprocess.run(base + ["--image", str(DATA / "img_wide.png"), "-p", "hi"],
                       capture_output=True, text=True, errors="replace", timeout=120)
    assert r.returncode == 0, r.stderr
    script = f"hello\n/image {tmp_path / 'nope.png'}\n/image {DATA / 'img_tall.png'}\nwhat\n"
    r = subprocess.run(base, input=script, capture_output=True, text=True, errors="replace", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "nope.png" in r.stderr and "attached to your next message: 45 tokens" in r.stderr


@pytest.mark.parametrize("qtype", ["f32", "f16"])
def test_convert_writes_the_pair(tmp_path, qtype):
    """`eight convert DIR` on the Hugging Face directory writes llama.cpp's pair (LLM GGUF +
    mmproj-*.gguf); the same weights through it give transformers' logits (NMSE <= 1e-4, F16
    included)."""
    need_cli()
    out = tmp_path / "tiny.gguf"
    r = subprocess.run([CLI, "convert", str(DATA / "tiny"), "-o", str(out), "--type", qtype],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "mmproj-tiny.gguf").exists()
    case = CASES[0]
    ids = [-1 if t == 300 else t for t in case["tokens"]]
    res = tmp_path / "l.npy"
    r = subprocess.run([CLI, "logits", "-m", str(out), "--mmproj", str(tmp_path / "mmproj-tiny.gguf"),
                        "--image", str(DATA / case["image"]), "--tokens", ",".join(map(str, ids)),
                        "-o", str(res), "-t", "2"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got, want = np.load(res).astype(np.float64), np.load(DATA / case["logits"]).astype(np.float64)
    err = nmse(got, want)
    print(f"convert --type {qtype}: NMSE {err:.2e}")
    assert got.shape == want.shape and err <= 1e-4
