"""DeepBooru (A1111's model-resnet_custom_v3.pt) through `eight tag`: a tiny random-weight network
of the real topology (tests/data/deepbooru, written by tools/reference/make_deepbooru_fixtures.py
with PyTorch and PIL), its probabilities against PyTorch's, the tag line at a threshold, the
rating tags reported apart, and broken checkpoints refused with a clear message.

Environment (set by CTest): EIGHT_CLI (the eight binary).
"""
import json
import os
import subprocess

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "deepbooru")
CLI = os.environ.get("EIGHT_CLI", os.path.join(ROOT, "build", "bin", "eight"))
EXPECTED = json.load(open(os.path.join(DATA, "expected.json"), encoding="utf-8"))
MODEL = os.path.join(DATA, "model-tiny.pt")
IMAGES = ["wide.png", "tall.png"]

# How the prompt line spells the fixture's tags: '_' as a space except in kaomoji, and \ ( )
# escaped (the rule `eight tag` applies to every tagger, docs/deepbooru.md).
PROMPT = {"hatsune_miku_(cosplay)": r"hatsune miku \(cosplay\)", "^_^": "^_^",
          "(o)_(o)": r"\(o\)_\(o\)"}


def run(*args):
    return subprocess.run([CLI, "tag", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tagged():
    r = run("-m", MODEL, *[os.path.join(DATA, i) for i in IMAGES], "--json", "--threshold", "0")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def probabilities(entry):
    got = {t["name"]: t["score"] for t in entry["general"] + entry["character"]}
    got.update(entry["rating"])
    return np.array([got[t] for t in EXPECTED["tags"]], dtype=np.float64)


def nmse(a, b):
    return float(np.sum((a - b) ** 2) / np.sum(b ** 2))


def test_probabilities_match_pytorch(tagged):
    got = [probabilities(e) for e in tagged]
    want = [np.array(EXPECTED["images"][i]) for i in IMAGES]
    for name, g, w in zip(IMAGES, got, want):
        assert nmse(g, w) <= 1e-5, name
    # The random network answers both images alike; their difference checks the input handling.
    assert nmse(got[0] - got[1], want[0] - want[1]) <= 1e-3


def test_rating_reported_apart(tagged):
    ratings = [t for t in EXPECTED["tags"] if t.startswith("rating:")]
    for e in tagged:
        assert sorted(e["rating"]) == sorted(ratings)
        assert not any(t["name"].startswith("rating:") for t in e["general"] + e["character"])
        assert "rating" not in e["text"]
        assert e["character"] == []  # DeepBooru's file has no categories beyond the ratings


@pytest.mark.parametrize("threshold", [0.5, 0.7])
def test_tags_at_threshold(threshold):
    r = run("-m", MODEL, *[os.path.join(DATA, i) for i in IMAGES], "--json", "--threshold",
            str(threshold))
    assert r.returncode == 0, r.stderr
    for e, name in zip(json.loads(r.stdout), IMAGES):
        probs = EXPECTED["images"][name]
        kept = [(p, t) for t, p in zip(EXPECTED["tags"], probs)
                if not t.startswith("rating:") and p > threshold]
        assert all(abs(p - threshold) > 1e-4 for p in probs), "fixture too close to the threshold"
        kept.sort(key=lambda x: -x[0])
        assert [t["name"] for t in e["general"]] == [t for _, t in kept]
        want = ", ".join(PROMPT.get(t, t.replace("_", " ")) for _, t in kept)
        assert e["text"] == want


def test_plain_output_prints_the_line_and_rating():
    r = run("-m", MODEL, os.path.join(DATA, "wide.png"), "--threshold", "0.5")
    assert r.returncode == 0, r.stderr
    probs = dict(zip(EXPECTED["tags"], EXPECTED["images"]["wide.png"]))
    top = max((t for t in probs if t.startswith("rating:")), key=lambda t: probs[t])
    assert top in r.stdout
    kept = sorted((t for t in probs if not t.startswith("rating:") and probs[t] > 0.5),
                  key=lambda t: -probs[t])
    assert ", ".join(PROMPT.get(t, t.replace("_", " ")) for t in kept) in r.stdout


@pytest.mark.parametrize("name,message", [
    ("bad-missing.pt", "missing tensor n_Conv_1.weight"),
    ("bad-shape.pt", "n_Conv_0.weight is [2, 3, 5, 5], expected [2, 3, 7, 7]"),
    ("bad-no-tags.pt", "has no 'tags' list"),
])
def test_broken_checkpoints_refused(name, message):
    r = run("-m", os.path.join(DATA, name), os.path.join(DATA, "wide.png"))
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
