"""WordPiece (BERT) against Hugging Face on multilingual text: accents, Hangul, CJK, Thai, RTL
scripts, control and format characters, odd whitespace, emoji keycaps and ZWJ sequences
(tests/data/wordpiece_corpus.json, our own strings).

The vocabulary is built here from the corpus itself, deterministically: every character HF's
normalizer leaves (as a word start and as a "##" continuation) except a few left out so that
[UNK] happens, plus whole words, prefixes and suffixes chosen by a hash, so greedy longest match
has real choices to make. It is written as a vocabulary-only GGUF in llama.cpp's layout
(tests/reference/make_random_bert.py) for eight, and given to Hugging Face as vocab.txt:
transformers' BertTokenizer (the `tokenizers` BertNormalizer + BertPreTokenizer + WordPiece,
do_lower_case, as every BERT GGUF is used) is the reference. Target: every id equal."""
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

pytest.importorskip("tokenizers")
pytest.importorskip("gguf")

ROOT = Path(os.environ.get("EIGHT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
CLI = os.environ.get("EIGHT_CLI", str(ROOT / "build" / "bin" / "eight"))
sys.path.insert(0, str(ROOT / "tests" / "reference"))
import make_random_bert  # noqa: E402

CORPUS = json.loads((ROOT / "tests" / "data" / "wordpiece_corpus.json").read_text(encoding="utf-8"))


def h(s, salt):
    return zlib.crc32(f"{salt}:{s}".encode("utf-8"))


def hf_words(texts):
    from tokenizers import normalizers, pre_tokenizers
    norm = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                      strip_accents=None, lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    for t in texts:
        for w, _ in pre.pre_tokenize_str(norm.normalize_str(t)):
            yield w


def build_vocab():
    vocab = list(make_random_bert.SPECIALS)
    seen = set(vocab)

    def add(t):
        if t not in seen:
            seen.add(t)
            vocab.append(t)

    for w in hf_words(CORPUS):
        for c in w:
            if h(c, "drop") % 23 == 0:
                continue  # some characters unknown: words holding them become [UNK]
            add(c)
            add("##" + c)
        if h(w, "word") % 3 == 0:
            add(w)
        if len(w) > 2 and h(w, "pre") % 2 == 0:
            add(w[: 1 + h(w, "n") % (len(w) - 1)])
        if len(w) > 2 and h(w, "suf") % 2 == 0:
            add("##" + w[1 + h(w, "m") % (len(w) - 1):])
    return vocab


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("wpm")
    vocab = build_vocab()
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    make_random_bert.write_vocab_only(str(d / "wpm.gguf"), vocab)
    return d, vocab


def eight_ids(gguf, texts, tmp_path):
    p = tmp_path / "texts.json"
    p.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    r = subprocess.run([CLI, "tokenize", "-m", str(gguf), "--no-bos", "--no-parse-special",
                        "--batch", str(p)], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return [json.loads(line)["ids"] for line in r.stdout.decode("utf-8").splitlines()]


def test_vocab_has_choices(files):
    _, vocab = files
    assert len(vocab) > 1500
    assert any(t.startswith("##") and len(t) > 4 for t in vocab)


def test_multilingual_ids_match_bert_tokenizer(files, tmp_path):
    from transformers import BertTokenizer
    d, _ = files
    ref = BertTokenizer(vocab_file=str(d / "vocab.txt"), do_lower_case=True)
    got = eight_ids(d / "wpm.gguf", CORPUS, tmp_path)
    bad, n_unk = [], 0
    for t, g in zip(CORPUS, got):
        want = ref.encode(t, add_special_tokens=False)
        n_unk += want.count(ref.unk_token_id)
        if g != want:
            bad.append(f"{t!r}\n    hf:    {ref.convert_ids_to_tokens(want)}\n"
                       f"    eight: {ref.convert_ids_to_tokens(g)}")
    assert n_unk > 0  # the corpus reaches [UNK] (dropped characters, words over 100 characters)
    assert not bad, f"{len(bad)}/{len(CORPUS)} differ\n" + "\n".join(bad[:10])


def test_cls_sep_added(files, tmp_path):
    d, vocab = files
    r = subprocess.run([CLI, "tokenize", "-m", str(d / "wpm.gguf"), "Café"], capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    ids = [int(x) for x in r.stdout.split()]
    assert ids[0] == vocab.index("[CLS]") and ids[-1] == vocab.index("[SEP]")
