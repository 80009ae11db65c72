"""`eight music -p` end to end: MAGNeT text-to-codes (tests/data/magnet, a tiny random MAGNeT
from tools/reference/make_magnet.py, whose logits tests/models/test_magnet.cpp checks against
audiocraft) followed by the EnCodec decoder (tests/data/encodec's audiocraft-layout
compression_state_dict.bin), with the T5 fixture encoder and the T5 tests' SentencePiece model."""
import gzip
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from test_encodec import run as music  # `eight music` with clear-error checking

ROOT = Path(os.environ.get("EIGHT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("magnet")
    model, t5 = tmp / "magnet-tiny", tmp / "t5"
    model.mkdir()
    shutil.copy(DATA / "magnet" / "state_dict.bin", model)
    shutil.copy(DATA / "encodec" / "audiocraft" / "compression_state_dict.bin", model)
    shutil.copytree(DATA / "magnet" / "t5", t5)
    (t5 / "spiece.model").write_bytes(gzip.decompress((DATA / "t5" / "spm.model.gz").read_bytes()))
    return model, t5


def test_prompt_to_wav(dirs, tmp_path):
    model, t5 = dirs
    out, codes = tmp_path / "x.wav", tmp_path / "c.npy"
    r = music("-m", model, "--t5", t5, "-p", "Hello world!", "--duration", "1", "--seed", "3",
              "--steps", "3,2,2,2", "-o", out, "--save-codes", codes, "--json")
    j = json.loads(r.stdout)
    c = np.load(codes)
    assert c.dtype == np.int32 and c.shape == (4, 48)  # 50 frames cut to 16 spans of 3
    assert c.min() >= 0 and c.max() < 64  # the tiny LM's card
    assert j["frames"] == 48 and j["samples"] > 0 and out.stat().st_size > 44
    assert "stage 4/4" in r.stderr  # progress per stage
    # Seeded: the same codes again; another seed, other codes.
    again = tmp_path / "again.npy"
    music("-m", model, "--t5", t5, "-p", "Hello world!", "--duration", "1", "--seed", "3",
          "--steps", "3,2,2,2", "-o", tmp_path / "y.wav", "--save-codes", again)
    assert np.array_equal(np.load(again), c)
    other = tmp_path / "other.npy"
    music("-m", model, "--t5", t5, "-p", "Hello world!", "--duration", "1", "--seed", "4",
          "--steps", "3,2,2,2", "-o", tmp_path / "z.wav", "--save-codes", other)
    assert not np.array_equal(np.load(other), c)


def test_missing_t5_and_bad_checkpoint(dirs, tmp_path):
    model, t5 = dirs
    r = music("-m", model, "--t5", DATA / "magnet" / "t5", "-p", "x", "--duration", "1",
              "-o", tmp_path / "x.wav", ok=False)
    assert "spiece.model" in r.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "state_dict.bin").write_bytes((model / "state_dict.bin").read_bytes()[:3000])
    shutil.copy(model / "compression_state_dict.bin", bad)
    r = music("-m", bad, "--t5", t5, "-p", "x", "--duration", "1", "-o", tmp_path / "x.wav",
              ok=False)
    assert "state_dict.bin" in r.stderr
