"""EnCodec decoding and `eight music --codes`, against tools/reference/make_encodec.py's fixtures
(tests/data/encodec/): a tiny random transformers EncodecModel shaped like encodec_32khz, saved
as a transformers directory and converted to audiocraft's compression_state_dict.bin (checked
there against audiocraft's own SEANetDecoder), with given codes and the audio each decodes to.

Bounds: NMSE = |e - ref|² / |ref|² <= 1e-5 (measured ~1e-14 for both layouts) and the largest
sample error <= 1e-4."""
import json
import os
import shutil
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(os.environ.get("EIGHT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
CLI = os.environ.get("EIGHT_CLI", str(ROOT / "build" / "bin" / "eight"))
DATA = ROOT / "tests" / "data" / "encodec"
LAYOUTS = {"hf": "transformers", "audiocraft": "audiocraft"}


def run(*args, ok=True):
    r = subprocess.run([CLI, "music", *map(str, args)], capture_output=True, text=True,
                       timeout=120)
    if ok:
        assert r.returncode == 0, r.stderr
    else:
        # A clear error, never a crash (a signal gives a negative return code).
        assert r.returncode in (1, 2), (r.returncode, r.stderr)
    return r


def read_wav(path):
    """(rate, channels, format tag, bits, float64 samples) for PCM16 and IEEE float WAV."""
    b = Path(path).read_bytes()
    assert b[:4] == b"RIFF" and b[8:12] == b"WAVE"
    pos, fmt, data = 12, None, None
    while pos + 8 <= len(b):
        cid, size = b[pos:pos + 4], struct.unpack("<I", b[pos + 4:pos + 8])[0]
        body = b[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            data = body
        pos += 8 + size + (size & 1)
    tag, channels, rate, _, _, bits = fmt
    if tag == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's first two bytes
        tag = struct.unpack("<H", b[b.find(b"fmt ") + 8 + 24:b.find(b"fmt ") + 8 + 26])[0]
    dtype = {(1, 16): "<i2", (3, 32): "<f4"}[(tag, bits)]
    x = np.frombuffer(data, dtype=dtype).astype(np.float64)
    return rate, channels, tag, bits, x / 32768.0 if tag == 1 else x


def nmse(got, ref):
    ref = ref.astype(np.float64)
    return float(((got - ref) ** 2).sum() / (ref ** 2).sum())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_decode_matches_reference(layout, tmp_path):
    out = tmp_path / "out.wav"
    r = run("-m", DATA / layout, "--codes", DATA / "codes.npy", "-o", out, "--float", "--json")
    info = json.loads(r.stdout)
    assert info["layout"] == LAYOUTS[layout]
    assert (info["sample_rate"], info["channels"], info["frames"], info["samples"]) == \
        (32000, 1, 10, 6400)
    assert info["format"] == "wav-float32" and info["seconds"] == pytest.approx(0.2)
    rate, channels, tag, bits, x = read_wav(out)
    assert (rate, channels, tag, bits) == (32000, 1, 3, 32)
    ref = np.load(DATA / f"audio_{layout}.npy")
    assert x.shape == ref.shape
    assert nmse(x, ref) <= 1e-5
    # The pad modes differ only near the ends (NMSE 2e-5 between them): bound the worst sample
    # too, which they miss by 0.09.
    assert np.abs(x - ref).max() <= 1e-4
    assert "decoding" in r.stderr  # progress


def test_one_frame_reflect_padding(tmp_path):
    # One frame is shorter than the first convolution's reflect padding (pad1d's zero extension).
    codes = tmp_path / "codes1.npy"
    np.save(codes, np.load(DATA / "codes.npy")[:, :1])
    out = tmp_path / "out.wav"
    run("-m", DATA / "hf", "--codes", codes, "-o", out, "--float")
    x = read_wav(out)[4]
    assert x.shape == (640,)
    assert nmse(x, np.load(DATA / "audio_hf_1frame.npy")) <= 1e-5


def test_pcm16_wav_reads_back_with_wave(tmp_path):
    out = tmp_path / "out.wav"
    r = run("-m", DATA / "hf", "--codes", DATA / "codes.npy", "-o", out)
    assert "wrote" in r.stdout
    with wave.open(str(out), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == \
            (1, 2, 32000, 6400)
        pcm = np.frombuffer(w.readframes(6400), dtype="<i2").astype(np.float64)
    ref = np.clip(np.load(DATA / "audio_hf.npy").astype(np.float64), -1, 1)
    # 16-bit rounding (and clipping to [-1, 1]) only.
    assert np.abs(pcm / 32767.0 - ref).max() <= 2.0 / 32767


def test_flac_stream_info(tmp_path):
    out = tmp_path / "out.flac"
    info = json.loads(run("-m", DATA / "audiocraft", "--codes", DATA / "codes.npy", "-o", out,
                          "--json").stdout)
    assert info["format"] == "flac-pcm16"
    b = out.read_bytes()
    assert b[:4] == b"fLaC" and b[4] & 0x7F == 0  # STREAMINFO first
    si = int.from_bytes(b[8 + 10:8 + 18], "big")  # rate 20, channels-1 3, bps-1 5, total 36
    assert (si >> 44, ((si >> 41) & 7) + 1, ((si >> 36) & 31) + 1, si & ((1 << 36) - 1)) == \
        (32000, 1, 16, 6400)


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        dt = {"float32": "F32", "float16": "F16", "int64": "I64"}[str(a.dtype)]
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    b = Path(path).read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        s, e = v["data_offsets"]
        dt = {"F32": np.float32, "F16": np.float16, "I64": np.int64}[v["dtype"]]
        out[name] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).reshape(v["shape"])
    return out


def hf_copy(tmp_path, transform):
    d = tmp_path / "hf"
    shutil.copytree(DATA / "hf", d)
    write_safetensors(d / "model.safetensors", transform(read_safetensors(d / "model.safetensors")))
    return d


def test_hf_old_weight_norm_names_and_f16(tmp_path):
    # Older transformers checkpoints (the published encodec_32khz) name the weight norm
    # weight_g / weight_v; store the codebooks as f16 as well.
    def rename(sd):
        out = {}
        for k, v in sd.items():
            k = k.replace("parametrizations.weight.original0", "weight_g")
            k = k.replace("parametrizations.weight.original1", "weight_v")
            out[k] = v.astype(np.float16) if k.endswith("codebook.embed") else v
        return out
    d = hf_copy(tmp_path, rename)
    out = tmp_path / "out.wav"
    run("-m", d, "--codes", DATA / "codes.npy", "-o", out, "--float")
    # f16 codebooks round the latent: ~1e-7 relative.
    assert nmse(read_wav(out)[4], np.load(DATA / "audio_hf.npy")) <= 1e-5


def save_codes(tmp_path, arr):
    p = tmp_path / "codes.npy"
    np.save(p, arr)
    return p


@pytest.mark.parametrize("arr,message", [
    (np.full((4, 5), 2048, np.int32), "outside 0..2047"),
    (np.full((4, 5), -1, np.int32), "outside 0..2047"),
    (np.zeros((3, 5), np.int32), "[4, T]"),
    (np.zeros((4, 0), np.int32), "no frames"),
    (np.zeros(20, np.int32), "[4, T]"),
    (np.zeros((4, 5), np.int64), "int32"),
    (np.zeros((4, 5), np.float32), "int32"),
])
def test_bad_codes(tmp_path, arr, message):
    r = run("-m", DATA / "hf", "--codes", save_codes(tmp_path, arr), "-o", tmp_path / "o.wav",
            ok=False)
    assert message in r.stderr
    assert not (tmp_path / "o.wav").exists()


def test_bad_checkpoints(tmp_path):
    codes = DATA / "codes.npy"
    # Truncated audiocraft checkpoint.
    trunc = tmp_path / "trunc" / "compression_state_dict.bin"
    trunc.parent.mkdir()
    trunc.write_bytes((DATA / "audiocraft" / "compression_state_dict.bin").read_bytes()[:5000])
    r = run("-m", trunc.parent, "--codes", codes, ok=False)
    assert "compression_state_dict.bin" in r.stderr
    # A pointer to the published codec instead of weights.
    r = run("-m", DATA / "pretrained_pointer.bin", "--codes", codes, ok=False)
    assert "facebook/encodec_32khz" in r.stderr
    # A missing tensor.
    d = hf_copy(tmp_path, lambda sd: {k: v for k, v in sd.items() if "layers.4.block.3" not in k})
    r = run("-m", d, "--codes", codes, ok=False)
    assert "decoder.layers.4.block.3.conv" in r.stderr
    # A config that does not match the weights.
    cfg = json.loads((d / "config.json").read_text())
    shutil.copy(DATA / "hf" / "model.safetensors", d / "model.safetensors")
    cfg["num_filters"] = 4
    (d / "config.json").write_text(json.dumps(cfg))
    r = run("-m", d, "--codes", codes, ok=False)
    assert "shape" in r.stderr and "config implies" in r.stderr
    (d / "config.json").write_text("{not json")
    assert "not valid JSON" in run("-m", d, "--codes", codes, ok=False).stderr
    cfg["model_type"] = "whisper"
    (d / "config.json").write_text(json.dumps(cfg))
    assert "not 'encodec'" in run("-m", d, "--codes", codes, ok=False).stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "neither" in run("-m", empty, "--codes", codes, ok=False).stderr


def test_cli_contract_errors(tmp_path):
    codes = DATA / "codes.npy"
    r = run("-m", DATA / "hf", "-p", "lofi hip hop", "-o", tmp_path / "o.wav", ok=False)
    assert "MAGNeT language model" in r.stderr
    r = run("-m", DATA / "hf", "-p", "x", "--steps", "20,10", ok=False)
    assert "--steps" in r.stderr
    r = run("-m", DATA / "hf", "--codes", codes, "-o", tmp_path / "o.flac", "--float", ok=False)
    assert "FLAC" in r.stderr
    r = run("-m", DATA / "hf", "--codes", codes, "-o", tmp_path / "o.mp3", ok=False)
    assert "unknown output format" in r.stderr
    r = run("-m", DATA / "hf", "--codes", codes, "-p", "x", ok=False)
    assert "--codes" in r.stderr
    assert "--save-codes" in subprocess.run([CLI, "music", "--help"], capture_output=True,
                                            text=True).stdout
