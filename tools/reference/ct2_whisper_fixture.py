"""Writes tests/data/ct2_whisper/<quantization>/model.bin with CTranslate2's own serializer and
quantizer (the `ctranslate2` package, in /work/diff-venv), from the tiny random weights that
tests/reference/make_random_ct2_whisper.py generates for the same seed. The test
tests/python/test_whisper_ct2.py then checks that the numpy-only writer, which the logits tests
use at full Whisper vocabulary size, produces the same bytes: so those tests cover files as
CTranslate2 writes them. The files also seed the fuzz target fuzz_ct2_model.

Usage: /work/diff-venv/bin/python tools/reference/ct2_whisper_fixture.py [OUT_DIR]
"""
import os
import sys

import numpy as np
import ctranslate2
from ctranslate2.specs import whisper_spec

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import make_random_ct2_whisper as ct2w  # noqa: E402

# Small enough to commit; the fixture's vocabulary is not Whisper's, so only the bytes are compared.
SHAPE = dict(n_vocab=64, n_audio_ctx=8, n_state=32, n_audio_layer=1, n_text_ctx=8,
             n_text_layer=1, n_mels=8)
N_HEAD = 2
SEED = 7
QUANTIZATIONS = ("float16", "int8_float16", "int8_bfloat16")


def spec_from(t, n_audio_layer, n_text_layer):
    """A WhisperSpec filled from whisper.cpp-named float32 weights, fused as the converter does
    (self-attention q/k/v into linear_0 with a zero key bias; cross-attention k/v into linear_1)."""
    spec = whisper_spec.WhisperSpec(n_audio_layer, N_HEAD, n_text_layer, N_HEAD)
    n = t["decoder.token_embedding.weight"].shape[1]
    zeros = np.zeros(n, np.float32)

    def linear(s, names):
        s.weight = np.concatenate([t[x + ".weight"] for x in names])
        s.bias = np.concatenate([t.get(x + ".bias", zeros) for x in names])

    def norm(s, p):
        s.gamma, s.beta = t[p + ".weight"], t[p + ".bias"]

    def layer(s, p, cross):
        norm(s.self_attention.layer_norm, p + ".attn_ln")
        linear(s.self_attention.linear[0], [p + ".attn.query", p + ".attn.key", p + ".attn.value"])
        linear(s.self_attention.linear[1], [p + ".attn.out"])
        if cross:
            norm(s.attention.layer_norm, p + ".cross_attn_ln")
            linear(s.attention.linear[0], [p + ".cross_attn.query"])
            linear(s.attention.linear[1], [p + ".cross_attn.key", p + ".cross_attn.value"])
            linear(s.attention.linear[2], [p + ".cross_attn.out"])
        norm(s.ffn.layer_norm, p + ".mlp_ln")
        linear(s.ffn.linear_0, [p + ".mlp.0"])
        linear(s.ffn.linear_1, [p + ".mlp.2"])

    e, d = spec.encoder, spec.decoder
    e.conv1.weight, e.conv1.bias = t["encoder.conv1.weight"], t["encoder.conv1.bias"]
    e.conv2.weight, e.conv2.bias = t["encoder.conv2.weight"], t["encoder.conv2.bias"]
    e.position_encodings.encodings = t["encoder.positional_embedding"]
    norm(e.layer_norm, "encoder.ln_post")
    for i, s in enumerate(e.layer):
        layer(s, f"encoder.blocks.{i}", False)
    d.embeddings.weight = t["decoder.token_embedding.weight"]
    d.position_encodings.encodings = t["decoder.positional_embedding"]
    norm(d.layer_norm, "decoder.ln")
    for i, s in enumerate(d.layer):
        layer(s, f"decoder.blocks.{i}", True)
    d.projection.weight = t["decoder.token_embedding.weight"]
    return spec


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "data", "ct2_whisper")
    for q in QUANTIZATIONS:
        t = ct2w.random_weights(np.random.default_rng(SEED), **SHAPE)
        spec = spec_from(t, SHAPE["n_audio_layer"], SHAPE["n_text_layer"])
        spec.register_vocabulary(["t%d" % i for i in range(SHAPE["n_vocab"])])
        spec.validate()
        spec.optimize(quantization=q)
        d = os.path.join(out, q)
        os.makedirs(d, exist_ok=True)
        spec._serialize(os.path.join(d, "model.bin"))  # model.bin only: what the test compares
        print(f"{d}/model.bin: {os.path.getsize(os.path.join(d, 'model.bin'))} bytes "
              f"(ctranslate2 {ctranslate2.__version__})")


if __name__ == "__main__":
    main()
