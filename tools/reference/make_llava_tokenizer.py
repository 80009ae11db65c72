#!/usr/bin/env python3
"""Writes tests/data/llava/tiny/tokenizer.json and tokenizer_config.json: the tiny LLaVA-NeXT
directory's tokenizer, as Hugging Face's `tokenizers` library saves it.

It is the vocabulary of tests/data/llava/tiny-llm-f32.gguf (tests/reference/make_random_llm.py's
byte_vocab: GPT-2 byte-level BPE, id = byte value, 5 merges, fillers, <|endoftext|> 317 as BOS)
with the image placeholder "<image>" as the special added token at image_token_index (300), as
llava-hf's tokenizers carry it; a TemplateProcessing post-processor adds BOS as add_bos does.
Needs only `tokenizers` (the test venv has it):

    .venv/bin/python tools/reference/make_llava_tokenizer.py
"""
import json
import pathlib
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "reference"))
from make_random_llm import byte_vocab  # noqa: E402

IMAGE_ID = 300


def main():
    tokens, _, merges = byte_vocab(extra=320 - 256 - 5 - 3)
    tokens[IMAGE_ID] = "<image>"
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<image>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", vocab["<|endoftext|>"])])
    assert tok.token_to_id("<image>") == IMAGE_ID and tok.get_vocab_size() == 320
    out = ROOT / "tests" / "data" / "llava" / "tiny"
    tok.save(str(out / "tokenizer.json"))
    config = {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>", "add_bos_token": True,
              "add_eos_token": False, "model_max_length": 512,
              "tokenizer_class": "PreTrainedTokenizerFast",
              "chat_template": "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + "
                               "m['content'] + '<|im_end|>\\n' }}{% endfor %}"
                               "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
                               "{% endif %}"}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=1) + "\n")
    print("ab<image>cd ->", tok.encode("ab<image>cd").ids)


if __name__ == "__main__":
    main()
