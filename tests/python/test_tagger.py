"""`eight tag` and `POST /v1/tags` with the WD v3 taggers: tiny random timm ViT (WD's model_args
and timm's defaults), ConvNeXt and SwinV2 folders from tools/reference/make_wd_fixtures.py, whose
probabilities timm computed after the wdv3-timm preprocessing (white square pad, bicubic resize,
mean/std, BGR) of three images, one of them RGBA. Checked: probabilities (NMSE), the exact tag
lists and prompt line at thresholds, the JSON contract, the folder mode (.txt per image, corrupt
files skipped, existing captions kept), the server endpoint and clear errors."""
import base64
import csv
import json
import os
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest
import requests

from server_util import ServeProcess

SOURCE = pathlib.Path(os.environ.get("EIGHT_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
CLI = os.environ.get("EIGHT_CLI", str(SOURCE / "build" / "bin" / "eight"))
DATA = SOURCE / "tests" / "data" / "wd"
IMAGES = [DATA / "images" / n for n in ("a.png", "b.png", "c.png")]
MODELS = ["vit", "vit_cls", "convnext", "swinv2"]
KAOMOJI = {"0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3",
           "6_9", ">_o", "@_@", "^_^", "o_o", "u_u", "x_x", "|_|", "||_||"}


def run(*args, check=True):
    if not os.path.exists(CLI):
        pytest.skip(f"SKIPPED: {CLI} is not built")
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"eight {' '.join(map(str, args))} failed ({r.returncode}):\n"
                             f"{r.stderr}")
    return r


def tags_of(model):
    with open(DATA / model / "selected_tags.csv", newline="") as f:
        return [(r["name"], int(r["category"])) for r in csv.DictReader(f)]


EXPECTED = np.load(DATA / "expected.npz")


def prompt_tag(name):  # the documented rule (docs/tagging.md)
    if name not in KAOMOJI:
        name = name.replace("_", " ")
    return re.sub(r"([\\()])", r"\\\1", name)


def reference_result(model, probs, th, cth):
    tags = tags_of(model)
    general = sorted([(n, p) for (n, c), p in zip(tags, probs) if c == 0 and p > th],
                     key=lambda t: -t[1])
    character = sorted([(n, p) for (n, c), p in zip(tags, probs) if c == 4 and p > cth],
                       key=lambda t: -t[1])
    rating = {n: p for (n, c), p in zip(tags, probs) if c == 9}
    text = ", ".join(prompt_tag(n) for n, _ in general + character)
    return general, character, rating, text


def all_probs(model, obj):
    d = dict(obj["rating"])
    d.update({t["name"]: t["score"] for t in obj["general"] + obj["character"]})
    return np.array([d[n] for n, _ in tags_of(model)])


@pytest.mark.parametrize("model", MODELS)
def test_probabilities_match_timm(model):
    out = json.loads(run("tag", "-m", DATA / model, *IMAGES, "--json", "--threshold", "0",
                         "--character-threshold", "0").stdout)
    assert [o["image"] for o in out] == [str(p) for p in IMAGES]
    for i, o in enumerate(out):
        ref = EXPECTED[f"{model}_probs"][i].astype(np.float64)
        got = all_probs(model, o)
        nmse = np.mean((got - ref) ** 2) / np.mean(ref ** 2)
        assert nmse <= 1e-5, (model, i, nmse)
        assert np.abs(got - ref).max() < 1e-4


def safe_threshold(probs, want):
    """A threshold near `want` at least 1e-3 away from every probability (so float noise cannot
    move a tag across it)."""
    for t in np.linspace(want, want + 0.05, 51):
        if np.min(np.abs(probs - t)) > 1e-3:
            return float(round(t, 4))
    raise AssertionError("no safe threshold")


@pytest.mark.parametrize("model", ["vit", "swinv2"])
def test_exact_tags_at_thresholds(model):
    probs = EXPECTED[f"{model}_probs"]
    for want_g, want_c in ((0.35, 0.85), (0.6, 0.5)):
        th, cth = safe_threshold(probs, want_g), safe_threshold(probs, want_c)
        out = json.loads(run("tag", "-m", DATA / model, *IMAGES, "--json", "--threshold", th,
                             "--character-threshold", cth).stdout)
        for i, o in enumerate(out):
            general, character, rating, text = reference_result(model, probs[i], th, cth)
            assert [t["name"] for t in o["general"]] == [n for n, _ in general]
            assert [t["name"] for t in o["character"]] == [n for n, _ in character]
            assert sorted(o["rating"]) == sorted(rating)
            assert o["text"] == text


def test_json_contract():
    out = json.loads(run("tag", "-m", DATA / "vit", IMAGES[0], "--json").stdout)
    assert isinstance(out, list) and len(out) == 1
    o = out[0]
    assert set(o) == {"image", "rating", "general", "character", "text"}
    assert set(o["rating"]) == {"general", "sensitive", "questionable", "explicit"}
    for t in o["general"] + o["character"]:
        assert set(t) == {"name", "score"} and 0 <= t["score"] <= 1
    assert all(t["score"] > 0.35 for t in o["general"])
    assert all(t["score"] > 0.85 for t in o["character"])
    scores = [t["score"] for t in o["general"]]
    assert scores == sorted(scores, reverse=True)


def test_prompt_line_escaping():
    # Threshold 0 keeps every tag: the fixture's names cover the rules.
    o = json.loads(run("tag", "-m", DATA / "vit", IMAGES[1], "--json", "--threshold", "0",
                       "--character-threshold", "0").stdout)[0]
    items = o["text"].split(", ")
    assert "ganyu \\(genshin impact\\)" in items and "artoria pendragon \\(fate\\)" in items
    assert "^_^" in items and "o_o" in items  # kaomoji keep their underscore
    assert "long hair" in items and "long_hair" not in items
    assert not any(r in items for r in ("general", "sensitive", "questionable", "explicit"))
    general_part = items[:len(o["general"])]
    assert general_part == [prompt_tag(t["name"]) for t in o["general"]]


def test_human_output():
    r = run("tag", "-m", DATA / "convnext", IMAGES[0], IMAGES[2])
    o = json.loads(run("tag", "-m", DATA / "convnext", IMAGES[0], IMAGES[2], "--json").stdout)
    blocks = r.stdout.strip().split("\n\n")
    assert len(blocks) == 2
    for block, obj, img in zip(blocks, o, (IMAGES[0], IMAGES[2])):
        head, line = block.split("\n")
        top = max(obj["rating"].items(), key=lambda kv: kv[1])
        assert head == f"{img}  (rating: {top[0]} {top[1]:.3f})"
        assert line == obj["text"]


def test_folder_mode(tmp_path):
    d = tmp_path / "dataset"
    d.mkdir()
    for p in IMAGES[:2]:
        shutil.copy(p, d / p.name)
    (d / "broken.png").write_bytes(IMAGES[0].read_bytes()[:100])  # truncated
    (d / "notes.md").write_text("not an image")
    r = run("tag", "-m", DATA / "vit", d)
    assert r.returncode == 0
    assert "broken.png" in r.stderr and "warning" in r.stderr
    assert "2 tagged, 1 unreadable skipped" in r.stderr
    assert "[1/3]" in r.stderr  # progress
    ref = json.loads(run("tag", "-m", DATA / "vit", *IMAGES[:2], "--json").stdout)
    for p, o in zip(IMAGES[:2], ref):
        assert (d / (p.stem + ".txt")).read_text() == o["text"]
    assert not (d / "broken.txt").exists() and not (d / "notes.txt").exists()
    # Existing captions are kept unless --overwrite.
    (d / "a.txt").write_text("my own caption")
    r = run("tag", "-m", DATA / "vit", d)
    assert (d / "a.txt").read_text() == "my own caption"
    assert "2 kept their existing .txt" in r.stderr
    run("tag", "-m", DATA / "vit", d, "--overwrite")
    assert (d / "a.txt").read_text() == ref[0]["text"]
    # a.png and a.webp would both write a.txt: the first in name order wins, the other is named.
    shutil.copy(IMAGES[2], d / "a.webp")
    r = run("tag", "-m", DATA / "vit", d, "--overwrite")
    assert "a.webp" in r.stderr and "1 skipped for sharing a name" in r.stderr
    assert (d / "a.txt").read_text() == ref[0]["text"]


def test_file_mode_skips_unreadable(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    r = run("tag", "-m", DATA / "vit", IMAGES[0], bad, "--json", check=False)
    assert r.returncode == 1 and "bad.png" in r.stderr
    out = json.loads(r.stdout)
    assert [o["image"] for o in out] == [str(IMAGES[0])]


def edit_weights(d, drop=None, reshape=None):
    from safetensors.numpy import load_file, save_file
    w = load_file(str(d / "model.safetensors"))
    if drop:
        del w[drop]
    if reshape:
        w[reshape] = np.concatenate([w[reshape], w[reshape]])
    save_file(w, str(d / "model.safetensors"))


def corrupt_copy(tmp_path, model, edit):
    d = tmp_path / f"{model}-broken"
    shutil.copytree(DATA / model, d)
    edit(d)
    return d


@pytest.mark.parametrize("case,edit,message", [
    ("architecture", lambda d: (d / "config.json").write_text(
        json.dumps({**json.loads((d / "config.json").read_text()), "architecture": "eva02_x"})),
     "architecture 'eva02_x' is not supported"),
    ("bad json", lambda d: (d / "config.json").write_text("{"), "not valid JSON"),
    ("tag count", lambda d: (d / "selected_tags.csv").write_text(
        "\n".join((d / "selected_tags.csv").read_text().splitlines()[:-1]) + "\n"),
     "num_classes 40 but selected_tags.csv lists 39"),
    ("category", lambda d: (d / "selected_tags.csv").write_text(
        (d / "selected_tags.csv").read_text().replace(",hatsune_miku,4,", ",hatsune_miku,7,")),
     "category '7'"),
    ("truncated weights", lambda d: (d / "model.safetensors").write_bytes(
        (d / "model.safetensors").read_bytes()[:5000]), "model.safetensors"),
    ("missing tensor", lambda d: edit_weights(d, drop="blocks.1.mlp.fc2.weight"),
     "has no tensor 'blocks.1.mlp.fc2.weight'"),
    ("wrong shape", lambda d: edit_weights(d, reshape="blocks.0.norm2.weight"),
     "tensor 'blocks.0.norm2.weight' has shape"),
    ("unchanged", lambda d: None, None),
])
def test_broken_models(tmp_path, case, edit, message):
    d = corrupt_copy(tmp_path, "vit", edit)
    r = run("tag", "-m", d, IMAGES[0], check=False)
    if message is None:  # the unbroken copy still works
        assert r.returncode == 0
        return
    assert r.returncode == 1 and "error" in r.stderr and message in r.stderr, r.stderr
    assert "Segmentation" not in r.stderr


def test_argument_errors(tmp_path):
    r = run("tag", "-m", DATA / "vit", IMAGES[0], "--threshold", "1.5", check=False)
    assert r.returncode == 1 and "--threshold must lie in [0, 1]" in r.stderr
    r = run("tag", "-m", tmp_path, IMAGES[0], check=False)
    assert r.returncode == 1 and "not a tagger model" in r.stderr
    r = run("tag", "-m", DATA / "vit", tmp_path, check=False)  # an empty folder
    assert r.returncode == 1 and "no images" in r.stderr
    assert "--character-threshold" in run("tag", "--help").stdout


@pytest.fixture(scope="module")
def server():
    if not os.path.exists(CLI):
        pytest.skip(f"SKIPPED: {CLI} is not built")
    s = ServeProcess("--tag-model", DATA / "vit", threads=2)
    yield s
    s.stop()


def data_url(p):
    return "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()


def test_server_tags(server):
    cli = json.loads(run("tag", "-m", DATA / "vit", *IMAGES, "--json", "--threshold", "0.5",
                         "--character-threshold", "0.7").stdout)
    r = requests.post(server.url + "/v1/tags", json={
        "model": "vit", "image": data_url(IMAGES[2]), "threshold": 0.5,
        "character_threshold": 0.7})
    assert r.status_code == 200, r.text
    o = r.json()
    assert o["model"] == "vit" and o["image"] == 0
    for k in ("rating", "general", "character", "text"):
        assert o[k] == cli[2][k]
    # A list of images, bare base64, default thresholds.
    r = requests.post(server.url + "/v1/tags", json={
        "image": [base64.b64encode(p.read_bytes()).decode() for p in IMAGES[:2]]})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [d["image"] for d in data] == [0, 1]
    default = json.loads(run("tag", "-m", DATA / "vit", *IMAGES[:2], "--json").stdout)
    assert [d["text"] for d in data] == [d["text"] for d in default]
    assert "vit" in [m["id"] for m in requests.get(server.url + "/v1/models").json()["data"]]


@pytest.mark.parametrize("body,status,param", [
    ({"image": "!!!notbase64"}, 400, "image"),
    ({"image": "data:image/png;base64," + base64.b64encode(b"not a png").decode()}, 400,
     "image"),
    ({}, 400, "image"),
    ({"image": [data_url(IMAGES[0]), 5]}, 400, "image[1]"),
    ({"image": "https://example.com/a.png"}, 400, "image"),
    ({"image": "QUJD", "threshold": 2}, 400, "threshold"),
    ({"image": "QUJD", "character_threshold": "high"}, 400, "character_threshold"),
    ({"image": "QUJD", "model": "other"}, 404, "model"),
])
def test_server_errors(server, body, status, param):
    r = requests.post(server.url + "/v1/tags", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param
    r = requests.post(server.url + "/v1/tags", data="{not json",
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert server.alive()
