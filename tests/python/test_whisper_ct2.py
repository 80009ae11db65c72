"""CTranslate2 (faster-whisper) Whisper directories: `eight logits -m DIR` against the float64
reference (tests/reference/whisper_ref.py) on the weights as the directory stores them, for every
quantization CTranslate2 writes (written by tests/reference/make_random_ct2_whisper.py, which
follows CTranslate2's serializer and quantizer); split model.bin parts; `eight convert` to
whisper.cpp's format giving the same logits; corrupt directories giving clear errors.

Environment (set by CTest): EIGHT_CLI (the eight binary).
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_random_ct2_whisper as ct2w  # noqa: E402
import whisper_mel_ref  # noqa: E402
import whisper_ref  # noqa: E402
from test_whisper_model import cli, eight_logits, prompt, write_wav  # noqa: E402

# NMSE bounds against the float64 reference. Float weights: eight's F32/F16/BF16 products. Integer
# weights: the kernels quantize activations to 8 bits (as CTranslate2 does), so ~1e-4 is typical.
FLOAT_BOUND, QUANT_BOUND = 1e-4, 1e-3

CASES = [  # (id, write_dir arguments, bound)
    ("float32", dict(quantization="float32"), FLOAT_BOUND),
    ("float16-128mel-51866", dict(quantization="float16", n_vocab=51866, n_mels=128, n_state=96,
                                  n_head=3, n_audio_layer=1, n_text_layer=3, preprocessor=True,
                                  vocab_format="txt"), FLOAT_BOUND),
    ("bfloat16-en", dict(quantization="bfloat16", n_vocab=51864, n_head=4), FLOAT_BOUND),
    ("int8", dict(quantization="int8"), QUANT_BOUND),
    ("int8_float16", dict(quantization="int8_float16", vocab_format="txt"), QUANT_BOUND),
    ("int8_bfloat16", dict(quantization="int8_bfloat16", n_state=96, n_head=3), QUANT_BOUND),
    ("int16", dict(quantization="int16"), FLOAT_BOUND),
    ("int8-binary-v3", dict(quantization="int8", version=3), QUANT_BOUND),
]


def reference_logits(tmp_path, hp, eff, tokens, seed):
    samples = write_wav(tmp_path / "a.wav", 0.7, seed=seed)
    mel = whisper_mel_ref.log_mel_spectrogram(samples, whisper_mel_ref.mel_filters(hp["n_mels"]),
                                              2 * hp["n_audio_ctx"])
    return whisper_ref.decoder(hp, eff, tokens, whisper_ref.encoder(hp, eff, mel))


@pytest.mark.parametrize("name,kwargs,bound", CASES, ids=[c[0] for c in CASES])
def test_ct2_matches_reference(tmp_path, name, kwargs, bound):
    cli()
    d = tmp_path / "model"
    hp, eff = ct2w.write_dir(str(d), seed=len(name), **kwargs)
    tokens = prompt(hp["n_vocab"])
    want = reference_logits(tmp_path, hp, eff, tokens, len(name))
    got = eight_logits(d, tmp_path / "a.wav", tokens, tmp_path / "out.npy")
    assert got.shape == want.shape == (len(tokens), hp["n_vocab"])
    err = whisper_ref.nmse(got, want)
    agree = float(np.mean(got.argmax(1) == want.argmax(1)))
    print(f"{name}: NMSE {err:.3e}, argmax agreement {agree:.2f}")
    assert err <= bound, f"{name}: NMSE {err:.3e} > {bound:.0e}"
    if bound == FLOAT_BOUND:
        assert agree == 1.0
