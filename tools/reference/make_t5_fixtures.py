#!/usr/bin/env python3
"""Fixtures for eight's T5 encoder family and unigram SentencePiece tokenizer (tests/data/t5/).

Run with /work/diff-venv/bin/python (torch, transformers) and sentencepiece + protobuf importable:
  PYTHONPATH=/path/to/sentencepiece python tools/reference/make_t5_fixtures.py

Writes:
  spm.model / spm_bytes.model   unigram models trained here (nmt_nfkc normalization, the second
                                with byte_fallback as umT5's) by sentencepiece's own trainer
  tokenizer.json, tokenizer_bytes.json  the same models converted by transformers (T5TokenizerFast)
  tokens.json                   texts with the ids sentencepiece and tokenizers give them
  t5/ t5v11/ umt5/              tiny random encoders (T5 ReLU, v1.1 gated-gelu, umT5 per-layer
                                bias) as HF directories (config.json + model.safetensors)
  hidden.npz                    transformers' last_hidden_state for each model and text
"""
import glob
import gzip
import json
import os
import sys
import tempfile

import numpy as np
import sentencepiece as spm

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "t5")

# Tricky text for normalization: full-width, NFKC compatibility characters, accents (composed and
# combining), repeated and odd spaces, emoji, characters outside the vocabulary, control chars.
TEXTS = [
    "Hello world!",
    "A photo of a cat sitting on a mat, in the style of Van Gogh.",
    "  leading and trailing spaces  ",
    "many     spaces\tand\ttabs\nand newlines",
    "ＦＵＬＬ－ＷＩＤＴＨ ｔｅｘｔ １２３ ｶﾀｶﾅ",
    "ﬁ ﬂ ① ½ ™ ㎏ Ⅻ x² H₂O",
    "café naïve résumé façade über",
    "cafe\u0301 nai\u0308ve",
    "emoji 😀👍🏽 and ✨ sparkles",
    "漢字とかな、한국어, русский текст, ελληνικά",
    "zero\u200bwidth\u00a0nbsp\u3000ideographic",
    "<unk> </s> <pad> are plain text here",
    "",
    "x",
    "The quick brown fox jumps over the lazy dog 1234567890 times.",
    "ctrl\x01chars\x7f and \ufeffbom",
    "fill <extra_id_0> the <extra_id_2>span",
    " line sep ­ soft hyphen Ω ohm Å angstrom",
]


def corpus_file(tmp):
    lines = []
    for path in sorted(glob.glob("/usr/share/common-licenses/*")):
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="ignore") as f:
                lines += [l.strip() for l in f if l.strip()]
    lines += TEXTS[:11] * 3 + ["Ａ photo of ａ dog", "café crème brûlée", "naïve façade"] * 5
    path = os.path.join(tmp, "corpus.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def train(tmp, name, vocab, byte_fallback):
    prefix = os.path.join(tmp, name)
    spm.SentencePieceTrainer.train(
        input=corpus_file(tmp), model_prefix=prefix, vocab_size=vocab, model_type="unigram",
        character_coverage=0.995, byte_fallback=byte_fallback, pad_id=0, eos_id=1, unk_id=2,
        bos_id=-1, normalization_rule_name="nmt_nfkc", minloglevel=2)
    with open(prefix + ".model", "rb") as f:
        return f.read()


def hf_tokenizer(model_path, out_json, byte_fallback):
    """transformers' own T5 converter (what T5TokenizerFast runs on a spiece.model), with 3
    <extra_id_N> sentinels as T5's files have 100; byte_fallback as umT5's tokenizer.json."""
    from transformers.convert_slow_tokenizer import T5Converter

    sp = spm.SentencePieceProcessor(model_file=model_path)

    class Original:  # the attributes T5Converter reads from a slow T5Tokenizer
        vocab_file = model_path
        _extra_ids = 3
        legacy = True
        add_prefix_space = True

        def convert_tokens_to_ids(self, t):
            return sp.piece_to_id(t)

    class Converter(T5Converter):
        handle_byte_fallback = byte_fallback

    tok = Converter(Original()).converted()
    tok.add_special_tokens([f"<extra_id_{i}>" for i in range(3)])
    tok.save(out_json)
    return tok


def tokenizer_fixtures(tmp):
    cases = []
    for name, vocab, fb in (("spm", 700, False), ("spm_bytes", 700, True)):
        blob = train(tmp, name, vocab, fb)
        path = os.path.join(OUT, name + ".model")
        with open(path, "wb") as f:
            f.write(blob)
        sp = spm.SentencePieceProcessor(model_file=path)
        js = os.path.join(OUT, name.replace("spm", "tokenizer") + ".json")
        hf = hf_tokenizer(path, js, fb)
        for t in TEXTS:
            cases.append({"model": name, "text": t, "spm": sp.encode(t) + [sp.eos_id()],
                          "hf": hf.encode(t).ids})
    with open(os.path.join(OUT, "tokens.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=0)
    return cases


# (name, transformers class, config overrides, tokenizer): t5-base style (ReLU, bias in block 0,
# few buckets), v1.1 (gated-gelu, T5's default buckets/distance so that a config-less single file
# infers it), umT5 (per-layer bias, byte-fallback vocabulary).
MODELS = [
    ("t5", "T5EncoderModel", dict(feed_forward_proj="relu", relative_attention_num_buckets=8,
                                  relative_attention_max_distance=20), "spm"),
    ("t5v11", "T5EncoderModel", dict(feed_forward_proj="gated-gelu"), "spm"),
    ("umt5", "UMT5EncoderModel", dict(feed_forward_proj="gated-gelu",
                                      relative_attention_num_buckets=16,
                                      relative_attention_max_distance=64), "spm_bytes"),
]
HIDDEN_TEXTS = [TEXTS[0], TEXTS[1], TEXTS[8]]
PAD_TO = 48


def model_fixtures():
    import torch
    import transformers
    from tokenizers import Tokenizer

    torch.manual_seed(0)
    out = {}
    for name, cls, over, tok_name in MODELS:
        tok = Tokenizer.from_file(os.path.join(OUT, tok_name.replace("spm", "tokenizer") + ".json"))
        cfg_cls = transformers.UMT5Config if cls.startswith("UMT5") else transformers.T5Config
        cfg = cfg_cls(vocab_size=tok.get_vocab_size(), d_model=32, d_kv=8, num_heads=4, d_ff=48,
                      num_layers=2, num_decoder_layers=0, dropout_rate=0.0, **over)
        model = getattr(transformers, cls)(cfg).eval()
        with torch.no_grad():  # non-trivial norm weights (they start at 1)
            for n, p in model.named_parameters():
                if "layer_norm" in n:
                    p.uniform_(0.5, 1.5)
        d = os.path.join(OUT, name)
        model.save_pretrained(d, safe_serialization=True)
        for t_i, text in enumerate(HIDDEN_TEXTS):
            ids = tok.encode(text).ids
            x = torch.tensor([ids])
            with torch.no_grad():
                h = model(input_ids=x).last_hidden_state[0].numpy()
                # Padded to PAD_TO with <pad> (0): with the attention mask (T5's usual call)
                # and without it (FLUX's pipeline passes no mask: padding attends and is seen).
                padded = torch.tensor([ids + [0] * (PAD_TO - len(ids))])
                mask = torch.tensor([[1] * len(ids) + [0] * (PAD_TO - len(ids))])
                hm = model(input_ids=padded, attention_mask=mask).last_hidden_state[0].numpy()
                hn = model(input_ids=padded).last_hidden_state[0].numpy()
            out[f"{name}_{t_i}_ids"] = np.array(ids, dtype=np.int32)
            out[f"{name}_{t_i}"] = h.astype(np.float32)
            out[f"{name}_{t_i}_masked"] = hm.astype(np.float32)
            out[f"{name}_{t_i}_unmasked"] = hn.astype(np.float32)
    np.savez_compressed(os.path.join(OUT, "hidden.npz"), **out)


def fuzz_seeds(tmp):
    """Small seeds for tests/fuzz/fuzz_spiece.cpp: a tiny model with a few custom normalization
    rules (so its charsmap is small), as a whole model (mode byte 0) and its charsmap (mode 1)."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    rules = os.path.join(tmp, "rules.tsv")
    with open(rules, "w") as f:  # full-width A -> A, fi ligature -> f i, e + acute -> é
        f.write("FF21\t41\nFB01\t66 69\n65 301\tE9\n3000\t20\n")
    prefix = os.path.join(tmp, "seed")
    with open(os.path.join(tmp, "seed.txt"), "w") as f:
        f.write("\n".join(["Hello world!", "fine cafe", "abc def ghi", "\uff21\ufb01"] * 4) + "\n")
    spm.SentencePieceTrainer.train(
        input=os.path.join(tmp, "seed.txt"), model_prefix=prefix, vocab_size=300,
        model_type="unigram", normalization_rule_tsv=rules, byte_fallback=True, minloglevel=2,
        hard_vocab_limit=False)
    blob = open(prefix + ".model", "rb").read()
    m = pb.ModelProto()
    m.ParseFromString(blob)
    seeds = os.path.join(OUT, "..", "..", "fuzz", "seeds", "fuzz_spiece")
    os.makedirs(seeds, exist_ok=True)
    with open(os.path.join(seeds, "model"), "wb") as f:
        f.write(b"\0" + blob)
    with open(os.path.join(seeds, "charsmap"), "wb") as f:
        f.write(b"\1" + m.normalizer_spec.precompiled_charsmap)


def main():
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cases = tokenizer_fixtures(tmp)
        fuzz_seeds(tmp)
    diff = [c for c in cases if c["spm"] != c["hf"]]
    print(f"{len(cases)} tokenizer cases, {len(diff)} where sentencepiece and tokenizers differ")
    for c in diff:
        print(" ", c["model"], repr(c["text"]), c["spm"], c["hf"])
    if "--tokenizers-only" not in sys.argv:
        model_fixtures()
    # The charsmap makes each tokenizer file ~250-370 KB; gzip keeps the fixtures small.
    for f in ("spm.model", "spm_bytes.model", "tokenizer.json", "tokenizer_bytes.json"):
        path = os.path.join(OUT, f)
        with open(path, "rb") as src, gzip.GzipFile(path + ".gz", "wb", 9, mtime=0) as dst:
            dst.write(src.read())
        os.remove(path)


if __name__ == "__main__":
    main()
