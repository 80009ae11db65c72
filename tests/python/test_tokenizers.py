"""eight's tokenizers against Hugging Face `tokenizers` itself: the real tokenizer.json files of
Llama 3, Qwen 3 and Llama 2 (../shared/golden/tokenizer/hf) are loaded by HF and converted by
`eight convert-tokenizer`; a corpus of our own (tests/data/tokenizer_corpus.json: code,
whitespace runs, CJK, Cyrillic, RTL scripts, emoji with modifiers and ZWJ, numbers, URLs, text
that looks like special tokens) must give identical ids. HF's encode always splits out added
tokens, so eight runs with special parsing on. Round trips decode(encode(s)) == s where the
tokenizer is lossless.

Note: Qwen 3's tokenizer.json NFC-normalizes input and eight does not; the corpus is NFC (checked)
so this does not show."""
import gzip
import json
import os
import subprocess
import unicodedata
from pathlib import Path

import pytest

tokenizers = pytest.importorskip("tokenizers")

ROOT = Path(os.environ.get("EIGHT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
SHARED = Path(os.environ.get("EIGHT_SHARED_DIR", ROOT.parent / "shared"))
CLI = os.environ.get("EIGHT_CLI", str(ROOT / "build" / "bin" / "eight"))
HF = SHARED / "golden" / "tokenizer" / "hf"
CORPUS_PATH = ROOT / "tests" / "data" / "tokenizer_corpus.json"


def corpus():
    return json.loads(CORPUS_PATH.read_text(encoding="utf-8"))


def test_corpus_is_big_and_nfc():
    c = corpus()
    assert len(c) >= 300
    assert all(unicodedata.is_normalized("NFC", s) for s in c)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    if not HF.is_dir():
        pytest.skip("SKIPPED LOUDLY: ../shared/golden/tokenizer/hf is absent; HF comparison not run")
    out = {}
    base = tmp_path_factory.mktemp("hf")
    for name in ("llama3", "qwen3", "llama2"):
        d = base / name
        d.mkdir()
        (d / "tokenizer.json").write_bytes(gzip.decompress((HF / name / "tokenizer.json.gz").read_bytes()))
        (d / "tokenizer_config.json").write_bytes((HF / name / "tokenizer_config.json").read_bytes())
        gg = base / f"{name}.gguf"
        r = subprocess.run([CLI, "convert-tokenizer", str(d / "tokenizer.json"), str(gg)],
                           capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr.decode()
        out[name] = (d / "tokenizer.json", gg)
    return out


def eight_batch(gguf, texts, tmp_path, special=True):
    p = tmp_path / "texts.json"
    p.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    args = [CLI, "tokenize", "-m", str(gguf), "--no-bos", "--batch", str(p)]
    args.append("--special" if special else "--no-parse-special")
    r = subprocess.run(args, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.decode("utf-8").splitlines()
    assert len(lines) == len(texts)
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("name", ["llama3", "qwen3", "llama2"])
def test_ids_match_hf(name, converted, tmp_path):
    tj, gg = converted[name]
    hf = tokenizers.Tokenizer.from_file(str(tj))
    texts = corpus()
    got = eight_batch(gg, texts, tmp_path)
    bad = []
    for t, g in zip(texts, got):
        want = hf.encode(t, add_special_tokens=False).ids
        if g["ids"] != want:
            bad.append(f"{t!r}\n    hf:    {want}\n    eight: {g['ids']}")
    assert not bad, f"{name}: {len(bad)}/{len(texts)} differ\n" + "\n".join(bad[:8])


@pytest.mark.parametrize("name", ["llama3", "qwen3", "llama2"])
def test_round_trip(name, converted, tmp_path):
    _, gg = converted[name]
    texts = corpus()
    got = eight_batch(gg, texts, tmp_path, special=False)
    bad = []
    for t, g in zip(texts, got):
        if name == "llama2" and "\u2581" in t:
            continue  # SentencePiece writes spaces as U+2581, so that character is not lossless
        if g["text"] != t:
            bad.append(f"{t!r} -> {g['text']!r}")
    assert not bad, f"{name}: {len(bad)} strings do not round-trip\n" + "\n".join(bad[:8])


def test_tokenize_cli_forms(converted, tmp_path):
    _, gg = converted["llama3"]
    r = subprocess.run([CLI, "tokenize", "-m", str(gg), "--special", "hi<|eot_id|>"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    ids = [int(x) for x in r.stdout.split()]
    assert ids[-1] == 128009
    r = subprocess.run([CLI, "tokenize", "-m", str(gg), "--json", "-"], input="héllo".encode(),
                       capture_output=True, timeout=60)
    j = json.loads(r.stdout)
    assert "".join(j["pieces"]).endswith("héllo") and len(j["ids"]) == len(j["pieces"])


def test_model_file_templates(tmp_path):
    """`eight template -m FILE` uses the model's own tokenizer.chat_template and BOS/EOS."""
    if not HF.is_dir():
        pytest.skip("SKIPPED LOUDLY: ../shared is absent")
    import test_templates as tt
    from gguf import GGUFReader
    for vocab in ("ggml-vocab-phi-3", "ggml-vocab-llama-bpe", "ggml-vocab-qwen2"):
        gg = tmp_path / f"{vocab}.gguf"
        gg.write_bytes(gzip.decompress((SHARED / "golden" / "tokenizer" / f"{vocab}.gguf.gz").read_bytes()))
        r = GGUFReader(str(gg))
        f = r.fields["tokenizer.ggml.tokens"]
        toks = [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        ct = r.fields["tokenizer.chat_template"]
        src = bytes(ct.parts[ct.data[0]]).decode("utf-8")
        bos = toks[int(r.fields["tokenizer.ggml.bos_token_id"].parts[-1][0])]
        eos = toks[int(r.fields["tokenizer.ggml.eos_token_id"].parts[-1][0])]
        for conv_name, conv in tt.conversation_variants():
            conv = {k: v for k, v in conv.items() if k not in ("bos_token", "eos_token")}
            try:
                want = tt.jinja2_render(src, dict(conv, bos_token=bos, eos_token=eos)).encode()
            except Exception:
                want = None
            p = tmp_path / "c.json"
            p.write_text(json.dumps(conv, ensure_ascii=False), encoding="utf-8")
            res = subprocess.run([CLI, "template", "-m", str(gg), "--messages", str(p)],
                                 capture_output=True, timeout=60)
            if want is None:
                assert res.returncode != 0, (vocab, conv_name)
            else:
                assert res.returncode == 0, (vocab, conv_name, res.stderr)
                assert res.stdout == want, (vocab, conv_name, res.stdout, want)


def test_wordpiece_matches_hf(tmp_path):
    """BERT: HF's WordPiece (BertNormalizer + BertPreTokenizer) built from the bge vocabulary of
    the golden GGUF, against eight on the golden GGUF itself and on our import of HF's json."""
    if not SHARED.is_dir():
        pytest.skip("SKIPPED LOUDLY: ../shared is absent")
    from gguf import GGUFReader
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    gg = tmp_path / "bge.gguf"
    gg.write_bytes(gzip.decompress((SHARED / "golden" / "tokenizer" / "ggml-vocab-bert-bge.gguf.gz").read_bytes()))
    r = GGUFReader(str(gg))
    f = r.fields["tokenizer.ggml.tokens"]
    vocab = {}
    for i, idx in enumerate(f.data):
        t = bytes(f.parts[idx]).decode("utf-8")
        if t.startswith("\u2581"):
            t = t[1:]
        elif not (t.startswith("[") and t.endswith("]")):
            t = "##" + t
        vocab.setdefault(t, i)
    hf = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    hf.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                               strip_accents=None, lowercase=True)
    hf.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tj = tmp_path / "tokenizer.json"
    hf.save(str(tj))
    conv = tmp_path / "bge-imported.gguf"
    res = subprocess.run([CLI, "convert-tokenizer", str(tj), str(conv), "--arch", "bert"],
                         capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr.decode()
    texts = [t for t in corpus() if "[" not in t]  # [CLS]-like text is special in the GGUF
    for model_file in (gg, conv):
        got = eight_batch(model_file, texts, tmp_path, special=False)
        bad = [f"{t!r}\n    hf:    {hf.encode(t, add_special_tokens=False).ids}\n    eight: {g['ids']}"
               for t, g in zip(texts, got) if g["ids"] != hf.encode(t, add_special_tokens=False).ids]
        assert not bad, f"{model_file.name}: {len(bad)}/{len(texts)} differ\n" + "\n".join(bad[:8])


def test_phi3_special_prompts_split_as_llama_cpp(tmp_path):
    """Raw Phi-3 prompts with special-token text, as llama.cpp tokenizes them: split on the
    special tokens (longest first), whitespace after Phi-3's special tokens dropped (llama.cpp's
    RSTRIP rule for models named phi-3; not after <s>, <unk>, <|endoftext|>), every text fragment
    SentencePiece-encoded on its own with its "▁" prefix. The fragments' ids come from
    `--no-parse-special` (plain SentencePiece, held to llama.cpp's ids on this vocabulary by
    text_test_tokenizer's golden cases); the splitting here is written independently. One prompt
    also against the ids llama.cpp itself gives."""
    import re
    if not SHARED.is_dir():
        pytest.skip("SKIPPED LOUDLY: ../shared is absent")
    gg = tmp_path / "phi3.gguf"
    gg.write_bytes(gzip.decompress((SHARED / "golden" / "tokenizer" / "ggml-vocab-phi-3.gguf.gz").read_bytes()))

    def tok(text, *flags):
        r = subprocess.run([CLI, "tokenize", "-m", str(gg), "--no-bos", *flags, "-"],
                           input=text.encode(), capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        return [int(x) for x in r.stdout.split()]

    specials = {"<|user|>": 32010, "<|assistant|>": 32001, "<|end|>": 32007, "<|system|>": 32006,
                "<|endoftext|>": 32000, "<s>": 1, "</s>": 2}
    keep_space = {"<s>", "<|endoftext|>"}
    prompts = ["<|user|>\nSYS\nHI<|end|>\n<|assistant|>\n",
               "<|system|>\nYou are terse.<|end|>\n<|user|>\n  What is 2+2?\t<|end|>\n<|assistant|>\n4<|end|>\n",
               "<s><|user|>\nhello</s> world<|endoftext|> tail",
               "no specials at all, just text\n",
               "<|user|><|user|>\n\n\ndouble<|end|>"]
    pat = re.compile("|".join(re.escape(t) for t in sorted(specials, key=len, reverse=True)))
    for p in prompts:
        want, pos, strip = [], 0, False
        for m in list(pat.finditer(p)) + [None]:
            seg = p[pos: m.start() if m else len(p)]
            if strip:
                seg = seg.lstrip(" \t\n\r\v\f")
            if seg:
                want += tok(seg, "--no-parse-special")
            if m:
                want.append(specials[m.group()])
                strip = m.group() not in keep_space
                pos = m.end()
        assert tok(p) == want, p
        assert all(i < 32000 and i not in (1, 2) for i in tok(p, "--no-parse-special")), p
    assert tok(prompts[0]) == [32010, 317, 21554, 13, 17628, 32007, 32001]  # llama-tokenize
