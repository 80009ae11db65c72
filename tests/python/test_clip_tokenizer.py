"""eight's CLIP tokenizer against Hugging Face's CLIPTokenizer (transformers, tokenizers backend):
identical ids on a corpus with punctuation, accents, emoji, numbers, mixed case, whitespace runs and
long text (truncation to 77). The vocabulary is built from OpenAI's merges file the way
SimpleTokenizer builds it; eight builds its own from the same merges (clip_tool tokenize --merges).
"""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
from make_random_clip import vocab_from_merges  # noqa: E402

SHARED = os.environ.get("EIGHT_SHARED_DIR", os.path.join(ROOT, "..", "shared"))
MERGES = os.path.join(SHARED, "golden", "clip", "clip-bpe-merges.txt")
N_MERGES = 49152 - 256 - 2  # SimpleTokenizer's cut

CORPUS = [
    "a photo of a cat",
    "A PHOTO OF A DOG",
    "The Quick Brown Fox Jumps Over The Lazy Dog.",
    "Hello, world!!! How's it going? I'm fine; you'll see, we'd've won.",
    "   leading and trailing   spaces\tand\ttabs\nand\nnewlines   ",
    "café, naïve, résumé, Ångström, Zürich, São Paulo, Kraków, İstanbul? no: Istanbul",
    "Ελληνικά κείμενα και русский текст, العربية, עברית",
    "emoji: 😀🐱‍👤🚀 👍🏽 ❤️ and flags 🇫🇷🇯🇵",
    "numbers 1234567890 3.14159 1,000,000 -42 +7 1e10 ½ ² ٣",
    "symbols #hashtag @user $100 50% a&b <tag> [x] {y} (z) ~tilde` ^caret | pipe \\ back",
    "mixed CamelCaseWords and snake_case_words and kebab-case-words",
    "don't won't can't shouldn't it's they're we've I'd she'll",
    "quotes “smart” ‘single’ «guillemets» „low“ — em-dash – en-dash … ellipsis",
    "中文文本和日本語のテキスト、한국어 텍스트",
    "",
    "a",
    "<|startoftext|>special tokens inside<|endoftext|> text",
    "word " * 100,
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis " * 6,
]


def tool():
    build = os.environ.get("EIGHT_BINARY_DIR", os.path.join(ROOT, "build"))
    path = os.path.join(build, "bin", "clip_tool")
    if not os.path.exists(path):
        pytest.skip(f"SKIPPED: {path} is not built")
    return path


@pytest.fixture(scope="module")
def hf_tokenizer(tmp_path_factory):
    if not os.path.exists(MERGES):
        pytest.skip(f"SKIPPED: {MERGES} is absent (../shared is not beside the project)")
    transformers = pytest.importorskip("transformers")
    with open(MERGES, encoding="utf-8") as f:
        merges = [l for l in f.read().split("\n")[1:] if l][:N_MERGES]
    vocab = vocab_from_merges(merges)
    d = tmp_path_factory.mktemp("clip-tok")
    with open(d / "vocab.json", "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(d / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return transformers.CLIPTokenizer.from_pretrained(str(d)), d


def run_tool(args, texts):
    r = subprocess.run([tool(), "tokenize", *args], input=json.dumps(texts).encode(),
                       capture_output=True, check=True)
    return json.loads(r.stdout)


def test_vocab_size_from_merges(hf_tokenizer):
    tok, _ = hf_tokenizer
    assert len(tok) == 49408
    assert tok.convert_tokens_to_ids("<|startoftext|>") == 49406
    assert tok.convert_tokens_to_ids("<|endoftext|>") == 49407


@pytest.mark.parametrize("source", ["merges", "vocab", "tokenizer.json"])
def test_ids_match_hugging_face(hf_tokenizer, source):
    tok, d = hf_tokenizer
    if source == "tokenizer.json":
        tok.backend_tokenizer.save(str(d / "tokenizer.json"))
    args = {"merges": ["--merges", MERGES, "--limit", str(N_MERGES)],
            "vocab": ["--dir", str(d)],
            "tokenizer.json": ["--tokenizer-json", str(d / "tokenizer.json")]}[source]
    ours = run_tool(args, CORPUS)
    for text, got in zip(CORPUS, ours):
        want = tok(text, truncation=True, max_length=77)["input_ids"]
        assert got == want, f"{text!r}:\n ours {got}\n   hf {want}"
    assert max(len(x) for x in ours) == 77
    assert ours[CORPUS.index("word " * 100)][-1] == 49407
