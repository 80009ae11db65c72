"""`eight classify`, `eight embed`, `eight index` and `eight search` end to end on a random-weight
CLIP checkpoint: results checked against numpy computed from the embeddings eight itself reports
(the model's numerics are tests/python/test_clip_model.py's job), incremental indexing by file
size and mtime, unreadable images reported and skipped."""
import json
import os
import time

import numpy as np
import pytest

from clip_util import CLI, logit_scale, make_model, need_cli, run, write_images

pytest.importorskip("PIL", reason="SKIPPED: Pillow is not installed (scripts/deps.sh --test)")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    need_cli()
    return make_model(tmp_path_factory.mktemp("clip") / "tiny-clip")


def embed(model, *inputs):
    """inputs: ("image", path) or ("text", str) pairs → [n, d] from `eight embed --json`."""
    args = []
    for kind, value in inputs:
        args += [f"--{kind}", str(value)]
    out = json.loads(run("embed", "-m", model, *args, "--json").stdout)
    assert [o["input"] for o in out] == [str(v) for _, v in inputs]
    assert [o["type"] for o in out] == [k for k, _ in inputs]
    return np.array([o["embedding"] for o in out], dtype=np.float64)


def test_embed_order_norms_and_npy(model, tmp_path):
    imgs = write_images(tmp_path / "imgs", 2)
    inputs = [("text", "a cat"), ("image", imgs[0]), ("text", "a dog, running"), ("image", imgs[1])]
    e = embed(model, *inputs)
    assert e.shape[0] == 4
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    # The same inputs one at a time give the same rows (order and batching do not matter).
    for i, inp in enumerate(inputs):
        assert np.allclose(embed(model, inp)[0], e[i], atol=1e-5)
    out = tmp_path / "e.npy"
    run("embed", "-m", model, *sum(([f"--{k}", str(v)] for k, v in inputs), []), "-o", out)
    assert np.allclose(np.load(out), e, atol=1e-6)
    r = run("embed", "-m", model, "--image", tmp_path / "missing.png", check=False)
    assert r.returncode != 0 and "missing.png" in r.stderr


def test_classify_matches_softmax_of_cosines(model, tmp_path):
    imgs = write_images(tmp_path / "imgs", 3)
    labels = ["a cat", "a dog", "a red car"]
    r = run("classify", "-m", model, *imgs, "--labels", " a cat,a dog , a red car", "--json",
            "-k", "3")
    got = json.loads(r.stdout)
    assert [g["image"] for g in got] == [str(p) for p in imgs]
    text = embed(model, *[("text", f"a photo of {l}") for l in labels])
    scale = np.exp(logit_scale(model))
    for g, p in zip(got, imgs):
        img = embed(model, ("image", p))[0]
        z = scale * (text @ img)
        want = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        probs = {x["label"]: x["probability"] for x in g["labels"]}
        assert sorted(probs) == sorted(labels)
        assert np.allclose([probs[l] for l in labels], want, atol=1e-4)
        ps = [x["probability"] for x in g["labels"]]
        assert ps == sorted(ps, reverse=True)
    # --template and -k; an unreadable image is reported, the others still classified.
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    r = run("classify", "-m", model, imgs[0], bad, "--labels", "x,y", "--template", "{} photo",
            "-k", "1", check=False)
    assert r.returncode == 1 and "bad.jpg" in r.stderr
    assert str(imgs[0]) in r.stdout and r.stdout.count("%") == 1
    r = run("classify", "-m", model, imgs[0], check=False)
    assert r.returncode != 0 and "--labels" in r.stderr


def index_counts(stderr):
    line = next(l for l in stderr.splitlines() if "to embed" in l)
    nums = [int(w) for w in line.replace(",", " ").split() if w.isdigit()]
    return dict(zip(["total", "unchanged", "todo", "removed", "unreadable"], nums))


def test_index_incremental_and_search(model, tmp_path):
    folder = tmp_path / "photos"
    imgs = write_images(folder, 7)
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    idx = tmp_path / "photos.idx"
    r = run("index", "-m", model, folder, "-o", idx)
    assert index_counts(r.stderr) == dict(total=8, unchanged=0, todo=8, removed=0, unreadable=0)
    assert "broken.png" in r.stderr and "7 images" in r.stdout

    # Nothing changed: nothing embedded again, the broken file not retried.
    r = run("index", "-m", model, folder, "-o", idx)
    assert index_counts(r.stderr) == dict(total=8, unchanged=7, todo=0, removed=0, unreadable=1)
    # One image rewritten (new size and mtime), one removed, one added.
    from PIL import Image
    Image.new("RGB", (31, 29), (200, 10, 10)).save(imgs[1])
    os.utime(imgs[1], (time.time() + 5, time.time() + 5))
    imgs[2].unlink()
    Image.new("RGB", (64, 48), (10, 200, 10)).save(folder / "new.png")
    r = run("index", "-m", model, folder, "-o", idx)
    assert index_counts(r.stderr) == dict(total=8, unchanged=5, todo=2, removed=1, unreadable=1)
    assert "7 images" in r.stdout

    # Search: the top hits are what numpy finds over the same files' embeddings.
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".png", ".jpg")
                   and p.name != "broken.png")
    e = embed(model, *[("image", p) for p in files])
    q = embed(model, ("text", "a red square"))[0]
    r = run("search", idx, "--text", "a red square", "-k", "4", "--json")
    got = json.loads(r.stdout)
    order = np.argsort(-(e @ q), kind="stable")[:4]
    assert [g["path"] for g in got] == [str(files[i]) for i in order]
    assert np.allclose([g["score"] for g in got], (e @ q)[order], atol=1e-4)
    # By example: the image itself comes first, with cosine 1.
    r = run("search", idx, "--image", imgs[3], "-k", "1", "--json")
    top = json.loads(r.stdout)[0]
    assert top["path"] == str(imgs[3]) and abs(top["score"] - 1) < 1e-4


def test_index_refuses_another_model(model, tmp_path):
    folder = tmp_path / "p"
    write_images(folder, 2)
    idx = tmp_path / "p.idx"
    run("index", "-m", model, folder, "-o", idx)
    other = make_model(tmp_path / "other-clip", seed=9)
    for args in (["index", "-m", other, folder, "-o", idx],
                 ["search", idx, "-m", other, "--text", "x"]):
        r = run(*args, check=False)
        assert r.returncode != 0 and "tiny-clip" in r.stderr, r.stderr
    r = run("search", tmp_path / "missing.idx", "--text", "x", check=False)
    assert r.returncode != 0 and "missing.idx" in r.stderr
    (tmp_path / "junk.idx").write_bytes(b"EIGHTIDX" + b"\x01" * 40)
    r = run("search", tmp_path / "junk.idx", "--text", "x", check=False)
    assert r.returncode != 0 and "junk.idx" in r.stderr
