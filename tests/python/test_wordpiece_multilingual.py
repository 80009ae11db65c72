"""WordPiece (BERT) against Hugging Face on multilingual text: accents, Hangul, CJK, Thai, RTL
scripts, control and format characters, odd whitespace, emoji keycaps and ZWJ sequences
(tests/data/wordpiece_corpus.json, our own strings).

The vocabulary is built here from the corpus itself, deterministically: every character HF's
normalizer leaves (as a word start and as a "##" continuation) except a few left out so that
[UNK] happens, plus whole words, prefixes and suffixes chosen by a hash, so greedy longest match
has real choices to make. It is written as a vocabulary-only GGUF in llama.cpp's layout
(tests/reference/make_random_bert.py) for eight, and given to Hugging Face as vocab.txt:
`tokenizers`' BertWordPieceTokenizer (BertNormalizer + BertPreTokenizer + WordPiece, lower-cased,
as every BERT GGUF is used; transformers 5's BertTokenizer is built on it) is the reference.
Target: every id equal. (transformers' Python BertTokenizerLegacy differs from it on a final Σ,
which it lower-cases to ς, and on unassigned code points, which it drops.)"""
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
    assert len(vocab) > 1000
    assert any(t.startswith("##") and len(t) > 4 for t in vocab)


def test_multilingual_ids_match_bert_tokenizer(files, tmp_path):
    from tokenizers import BertWordPieceTokenizer
    d, _ = files
    ref = BertWordPieceTokenizer(str(d / "vocab.txt"), lowercase=True)
    unk = ref.token_to_id("[UNK]")
    got = eight_ids(d / "wpm.gguf", CORPUS, tmp_path)
    bad, n_unk = [], 0
    for t, g in zip(CORPUS, got):
        want = ref.encode(t, add_special_tokens=False).ids
        n_unk += want.count(unk)
        if g != want:
            bad.append(f"{t!r}\n    hf:    {[ref.id_to_token(i) for i in want]}\n"
                       f"    eight: {[ref.id_to_token(i) for i in g]}")
    assert n_unk > 0  # the corpus reaches [UNK] (dropped characters, words over 100 characters)
    assert not bad, f"{len(bad)}/{len(CORPUS)} differ\n" + "\n".join(bad[:10])


def test_cls_sep_added(files, tmp_path):
    d, vocab = files
    r = subprocess.run([CLI, "tokenize", "-m", str(d / "wpm.gguf"), "Café"], capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    ids = [int(x) for x in r.stdout.split()]
    assert ids[0] == vocab.index("[CLS]") and ids[-1] == vocab.index("[SEP]")


def random_strings(n, seed):
    """Strings of code points drawn from blocks chosen to hit every class the pre-tokenizer
    knows: controls, format and private-use characters, combining marks (old and new), odd
    spaces, punctuation assigned before and after Unicode 8.0 (HF's tables), CJK and compatibility
    ideographs, Hangul syllables and jamo, letters with case and accents, emoji, tags."""
    import random
    rng = random.Random(seed)
    blocks = [(0x0, 0x7f), (0x80, 0x24f), (0x300, 0x36f), (0x370, 0x4ff), (0x590, 0x6ff),
              (0x860, 0x8ff), (0x900, 0x97f), (0xe00, 0xe7f), (0x1100, 0x11ff), (0x1ab0, 0x1aff),
              (0x1e00, 0x1fff), (0x2000, 0x206f), (0x20a0, 0x214f), (0x2150, 0x218f),
              (0x2460, 0x24ff), (0x2e00, 0x2e5d), (0x3000, 0x30ff), (0x3130, 0x318f),
              (0x4e00, 0x4e80), (0xac00, 0xac40), (0xd7a0, 0xd7ff), (0xe000, 0xe010),
              (0xf900, 0xfaff), (0xfb00, 0xfb4f), (0xfe00, 0xfe6f), (0xff00, 0xffef),
              (0x110c0, 0x110d0), (0x13430, 0x13438), (0x1d400, 0x1d4ff), (0x1da80, 0x1da8b),
              (0x1e900, 0x1e95f), (0x1f300, 0x1f6ff), (0x20000, 0x20050), (0xe0000, 0xe007f)]
    out = []
    for _ in range(n):
        s = ""
        for _ in range(rng.randint(1, 24)):
            a, b = rng.choice(blocks)
            s += chr(rng.randint(a, b))
            if rng.random() < 0.2:
                s += " "
        out.append(s)
    return out


def test_random_strings_match_tokenizers(files, tmp_path):
    """2000 strings of random code points (seeded) against tokenizers' BertWordPieceTokenizer:
    this is what found HF's Unicode 8.0 character classes (see src/text/gen_unicode_data.py)."""
    from tokenizers import BertWordPieceTokenizer
    d, _ = files
    ref = BertWordPieceTokenizer(str(d / "vocab.txt"), lowercase=True)
    texts = random_strings(2000, seed=23)
    got = eight_ids(d / "wpm.gguf", texts, tmp_path)
    bad = [ascii(t) for t, g in zip(texts, got) if g != ref.encode(t, add_special_tokens=False).ids]
    assert not bad, f"{len(bad)}/{len(texts)} differ\n" + "\n".join(bad[:8])
