#!/usr/bin/env python3
"""Writes tests/data/blip/: tiny random BLIP captioning and VQA checkpoints as Hugging Face
directories (transformers' save_pretrained: config.json, model.safetensors or pytorch_model.bin,
tokenizer files, preprocessor_config.json) and what transformers computes from them: preprocessed
pixels, vision embeddings, greedy and beam tokens and texts, a conditional caption and a VQA
answer (expected.json, pixels_*.npy, vision_*.npy).

Run with the diff venv: /work/diff-venv/bin/python tools/reference/make_blip_fixtures.py
"""
import json
import pathlib
import shutil

import numpy as np
import torch
from PIL import Image
from transformers import (BertTokenizer, BlipConfig, BlipForConditionalGeneration,
                          BlipForQuestionAnswering)
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "blip"

WORDS = ("a an the of on in with and is are what color how many picture photo cat cats dog "
         "dogs man woman sitting standing red blue green white black two three one yes no table "
         "couch grass street car bus tree sky water people there this that it ' s . , ? !").split()
PIECES = ["##s", "##ing", "##ed", "##er", "##y"]


def write_vocab(path):
    # BERT's layout: specials first ([SEP] and [CLS] at their own ids), then words and pieces.
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + PIECES
    path.write_text("\n".join(tokens) + "\n")
    return tokens


def tokenizer(tmp):
    tokens = write_vocab(tmp / "vocab.txt")
    tok = BertTokenizer(str(tmp / "vocab.txt"), do_lower_case=True, bos_token="[DEC]",
                        additional_special_tokens=["[ENC]"], model_max_length=512)
    tok.add_special_tokens({"bos_token": "[DEC]"})
    return tok, len(tokens)


def config(vocab_size, tok):
    text = dict(vocab_size=vocab_size + 2, hidden_size=32, encoder_hidden_size=32,
                intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=40, bos_token_id=tok.convert_tokens_to_ids("[DEC]"),
                pad_token_id=0, sep_token_id=tok.sep_token_id, eos_token_id=2)
    vision = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                  num_attention_heads=4, image_size=64, patch_size=16)
    return BlipConfig(text_config=text, vision_config=vision, projection_dim=16)


def randomize(model, sep_id, sep_bias=1.0):
    # BLIP initializes the vision tower with std 1e-10 (its weights come from pretraining), which
    # would make every image give the same caption; random weights of ordinary size make the tokens
    # depend on the pixels. A sharper LM head (its transform's LayerNorm scale) makes greedy and
    # beam search differ, and a bias toward [SEP] ends some captions early.
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.vision_model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
        for name, p in model.named_parameters():
            if "crossattention.self" in name and name.endswith("weight"):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
        head = model.text_decoder.cls.predictions
        head.transform.LayerNorm.weight.mul_(3.0)
        head.bias.normal_(0, 0.5, generator=g)
        head.bias[sep_id] += sep_bias


def images():
    rng = np.random.default_rng(7)
    a = np.zeros((48, 80, 3), np.uint8)
    a[..., 0] = np.linspace(0, 255, 80)[None, :]
    a[..., 1] = np.linspace(255, 0, 48)[:, None]
    a[..., 2] = 90
    b = rng.integers(0, 256, (70, 50, 3), dtype=np.uint8)
    return {"gradient.png": Image.fromarray(a), "noise.png": Image.fromarray(b)}


def main():
    torch.manual_seed(0)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    tmp = OUT / "_tmp"
    tmp.mkdir()
    tok, n_vocab = tokenizer(tmp)
    proc = BlipImageProcessorPil(size={"height": 64, "width": 64})
    cfg = config(n_vocab, tok)
    expected = {"images": {}}

    for name, img in images().items():
        img.save(OUT / name)
        px = proc(Image.open(OUT / name), return_tensors="pt")["pixel_values"]
        np.save(OUT / f"pixels_{name[:-4]}.npy", px[0].numpy().astype(np.float32))
        expected["images"][name] = {}

    cap = BlipForConditionalGeneration(cfg).eval()
    randomize(cap, tok.sep_token_id)
    qa = BlipForQuestionAnswering(cfg).eval()
    randomize(qa, tok.sep_token_id)
    # A captioner that rarely says [SEP]: generation runs to transformers' default length.
    torch.manual_seed(1)
    runon = BlipForConditionalGeneration(cfg).eval()
    randomize(runon, tok.sep_token_id, sep_bias=-2.0)
    for d, model, safe in (("caption", cap, True), ("vqa", qa, False), ("runon", runon, True)):
        model.save_pretrained(OUT / d, safe_serialization=safe)
        tok.save_pretrained(OUT / d)
        proc.save_pretrained(OUT / d)
        shutil.copy(tmp / "vocab.txt", OUT / d / "vocab.txt")
    shutil.rmtree(tmp)
    # The VQA directory keeps only vocab.txt (+ tokenizer_config.json), and its weights as
    # pytorch_model.bin (torch.save of the state dict, as the hub's .bin files are): both tokenizer
    # sources and both weight formats are exercised.
    (OUT / "vqa" / "tokenizer.json").unlink(missing_ok=True)
    for f in (OUT / "vqa").glob("model*.safetensors"):
        f.unlink()
    torch.save(qa.state_dict(), OUT / "vqa" / "pytorch_model.bin")

    def gen(model, **kw):
        with torch.no_grad():
            return model.generate(**kw)[0].tolist()

    question = "What color is the cat?"
    for name in expected["images"]:
        px = torch.from_numpy(np.load(OUT / f"pixels_{name[:-4]}.npy"))[None]
        e = expected["images"][name]
        with torch.no_grad():
            emb = cap.vision_model(pixel_values=px)[0][0].numpy()
        np.save(OUT / f"vision_{name[:-4]}.npy", emb.astype(np.float32))
        greedy = gen(cap, pixel_values=px)
        beam = gen(cap, pixel_values=px, num_beams=3)
        long = gen(cap, pixel_values=px, max_new_tokens=30, num_beams=2)
        prompt_ids = tok("a picture of", return_tensors="pt")["input_ids"]
        cond = gen(cap, pixel_values=px, input_ids=prompt_ids.clone())
        q = tok(question, return_tensors="pt")
        answer = gen(qa, pixel_values=px, input_ids=q["input_ids"], attention_mask=q["attention_mask"])
        e["greedy"] = {"ids": greedy, "text": tok.decode(greedy, skip_special_tokens=True)}
        e["beam3"] = {"ids": beam, "text": tok.decode(beam, skip_special_tokens=True)}
        e["beam2_new30"] = {"ids": long, "text": tok.decode(long, skip_special_tokens=True)}
        e["prompt"] = {"prompt": "a picture of", "prompt_ids": prompt_ids[0].tolist(), "ids": cond,
                       "text": tok.decode(cond, skip_special_tokens=True)}
        e["runon"] = {"ids": gen(runon, pixel_values=px),
                      "prompt_ids": gen(runon, pixel_values=px, input_ids=prompt_ids.clone()),
                      "beam2": gen(runon, pixel_values=px, num_beams=2)}
        e["vqa"] = {"question": question, "question_ids": q["input_ids"][0].tolist(),
                    "ids": answer, "text": tok.decode(answer, skip_special_tokens=True)}
    expected["tokenize"] = {s: tok(s)["input_ids"] for s in
                            ["A picture of two cats.", "What's on the TABLE?", "sitting dogs xyz"]}
    expected["decode"] = {"ids": [2, 5, 24, 7, 17, 61, 3], "text": tok.decode(
        [2, 5, 24, 7, 17, 61, 3], skip_special_tokens=True)}
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main()
