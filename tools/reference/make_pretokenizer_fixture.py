#!/usr/bin/env python3
"""Pre-token splits from Hugging Face `tokenizers` for every pre-tokenizer family eight knows by
its tokenizer.ggml.pre name (src/text/pre_tokenizers.cpp), on part of the tokenizer corpus
(tests/data/tokenizer_corpus.json: prose, contractions in all cases, numbers, code, CJK, Greek,
Cyrillic, Arabic, emoji, whitespace runs). Writes tests/data/pretokenizer_splits.json, which
tests/text/test_pre_tokenizers.cpp compares eight's splits with.

Where the model's tokenizer.json uses tokenizers' own components (ByteLevel with its regex,
Digits, Punctuation), those components are built here as the tokenizer.json documents them, so
the check covers eight's regex translation of them; elsewhere the tokenizer.json is a sequence of
Split(Regex, "isolated") + ByteLevel(use_regex=false), built from the same regex strings, which
checks PCRE2 against tokenizers' regex engine (Oniguruma) on them. No model's tokenizer.json is
read: none is available offline here, and SmolLM2's ids are checked on its real vocabulary by
tests/python/test_smollm2_tokenizer.py.

    .venv/bin/python tools/reference/make_pretokenizer_fixture.py
"""
import json
import pathlib
import re

from tokenizers import Regex, decoders, pre_tokenizers as pt

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "text" / "pre_tokenizers.cpp"
OUT = ROOT / "tests" / "data" / "pretokenizer_splits.json"

# Families whose tokenizer.json uses tokenizers' built-in components (one name each).
BYTELEVEL = pt.ByteLevel(add_prefix_space=False, use_regex=True)
BUILTIN = {
    "gpt-2": [BYTELEVEL],
    "smollm": [pt.Digits(individual_digits=True), BYTELEVEL],
    "falcon": [pt.Punctuation("contiguous"), BYTELEVEL, pt.Digits(individual_digits=False),
               pt.Split(Regex("[0-9][0-9][0-9]"), "isolated")],
}


# Falcon's Digits step runs after ByteLevel, on the byte alphabet, where the UTF-8 continuation
# bytes B2 B3 B9 BC BD BE are the numerals ² ³ ¹ ¼ ½ ¾: tokenizers then splits inside a character.
# eight (as llama.cpp) splits characters, not bytes; texts with those bytes are left out for falcon.
QUIRK_BYTES = {0xB2, 0xB3, 0xB9, 0xBC, 0xBD, 0xBE}
BYTE_DECODER = decoders.ByteLevel()


def cpp_families():
    """[(names, patterns)] parsed from pre_tokenizers.cpp's table (constants resolved)."""
    src = SOURCE.read_text()
    consts = {m.group(1): m.group(2) for m in
              re.finditer(r'constexpr std::string_view (k\w+) =\s*R"\((.*?)\)";', src, re.S)}
    table = src[src.index("static const std::vector<Family> table"):src.index("return table;")]
    table = re.sub(r"//[^\n]*", "", table)
    fams = []
    for m in re.finditer(r"\{\{((?:\"[^\"]*\",?\s*)+)\},\s*\{(.*?)\}(?:,\s*true)?\}", table, re.S):
        names = re.findall(r'"([^"]*)"', m.group(1))
        pats = []
        for t in re.finditer(r'R"\((.*?)\)"|((?:"(?:[^"\\]|\\.)*"\s*)+)|(k\w+)', m.group(2), re.S):
            if t.group(1) is not None:
                pats.append(t.group(1))
            elif t.group(2) is not None:
                pieces = re.findall(r'"((?:[^"\\]|\\.)*)"', t.group(2))
                pats.append("".join(p.replace("\\\\", "\\") for p in pieces))
            else:
                pats.append(consts[t.group(3)])
        fams.append((names, pats))
    return fams


def splits(pre, text):
    out = []
    for piece, _ in pre.pre_tokenize_str(text):
        out.append(piece)
    return out


def main():
    corpus = json.loads((ROOT / "tests" / "data" / "tokenizer_corpus.json").read_text())
    texts = corpus[::4] + [t for t in corpus if any(ord(c) > 0x2000 for c in t)][::3]
    texts = list(dict.fromkeys(t for t in texts if t))
    cases = {}
    for names, pats in cpp_families():
        name = next((n for n in names if n in BUILTIN), names[0])
        if name in BUILTIN:
            seq, byte_level = BUILTIN[name], True
        else:
            seq = [pt.Split(Regex(p), "isolated") for p in pats]
            byte_level = False
        pre = pt.Sequence(seq)
        rows, skipped = [], 0
        for t in texts:
            if name == "falcon" and QUIRK_BYTES & set(t.encode("utf-8")):
                rows.append(None)
                skipped += 1
                continue
            pieces = splits(pre, t)
            # Byte-level pieces back to their bytes (tokenizers' own ByteLevel decoder).
            raw = [(BYTE_DECODER.decode([p]) if byte_level else p).encode("utf-8")
                   for p in pieces]
            assert b"".join(raw) == t.encode("utf-8"), (name, t)
            ends, at = [], 0  # UTF-8 byte end offsets: compact and exact
            for p in raw:
                at += len(p)
                ends.append(at)
            rows.append(ends)
        cases[name] = {"built_from": "tokenizers components" if byte_level else
                       "Split(Regex) sequence", "skipped": skipped, "ends": rows}
    OUT.write_text(json.dumps({"texts": texts, "cases": cases}, ensure_ascii=False,
                              separators=(",", ":")) + "\n")
    print(f"{OUT}: {len(cases)} families x {len(texts)} texts")


if __name__ == "__main__":
    main()
