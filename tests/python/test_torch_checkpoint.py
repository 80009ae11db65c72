"""PyTorch checkpoints (.pt/.bin/.ckpt) through eight's safe reader: `eight inspect` lists and
dumps tensors and `eight convert` writes safetensors/GGUF, checked against the values torch.load
read back when tools/reference/make_torch_fixtures.py wrote tests/data/torch/ (zip and legacy
formats, every common dtype, views with storage offsets, shared and non-contiguous storages, nested
non-tensor values). Hostile pickles (os.system, eval, subprocess.Popen) must be refused naming the
global, with nothing run and nothing written; corrupt and hand-made malicious files must give clear
errors. Hand-made checkpoints are built here with zipfile and raw pickle bytes (no torch needed).

Environment (set by CTest): EIGHT_CLI (the eight binary).
"""
import json
import os
import pickle
import struct
import subprocess
import zipfile

import numpy as np
import pytest
from gguf import GGUFReader

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "torch")
CLI = os.environ.get("EIGHT_CLI", os.path.join(ROOT, "build", "bin", "eight"))
EXPECTED = json.load(open(os.path.join(DATA, "expected.json"), encoding="utf-8"))
GOOD = [k for k, v in EXPECTED.items() if k != "hostile"]
HOSTILE = {k: v for k, v in EXPECTED["hostile"].items() if k != "marker"}
MARKER = EXPECTED["hostile"]["marker"]
NP_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
             "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def run(*args):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)


def inspect_json(path):
    r = run("inspect", path, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        data = raw[8 + n + b:8 + n + e]
        if t["dtype"] == "BF16":  # numpy has no bfloat16: widen the bits to float32
            bits = np.frombuffer(data, np.uint16).astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.frombuffer(data, NP_DTYPES[t["dtype"]])
        out[name] = (t["dtype"], arr.reshape(t["shape"]))
    return header.get("__metadata__", {}), out


@pytest.mark.parametrize("name", GOOD)
def test_inspect_lists_tensors_and_values(name):
    exp = EXPECTED[name]
    j = inspect_json(os.path.join(DATA, name))
    assert j["format"] == "pytorch-" + exp["format"]
    got = [(t["name"], t["dtype"], t["shape"]) for t in j["tensors"]]
    assert got == [(t["name"], t["dtype"], t["shape"]) for t in exp["tensors"]]
    for key, want in exp.get("values", {}).items():
        have = j["values"][key]
        if key == "meta":  # bytes come back as hex, sets as lists
            want = dict(want)
            assert have["blob"] == {"bytes": want.pop("blob")}
            assert sorted(have.pop("ids")) == want.pop("ids")
            have = {k: v for k, v in have.items() if k in want}
        assert have == want


def test_state_dict_prefix_of_wrappers():
    assert inspect_json(os.path.join(DATA, "module_state.bin"))["state_dict_prefix"] == ""
    assert inspect_json(os.path.join(DATA, "wrapped.ckpt"))["state_dict_prefix"] == \
        "state_dict.module."
    assert inspect_json(os.path.join(DATA, "best_state.bin"))["state_dict_prefix"] == "best_state."


@pytest.mark.parametrize("name", ["zip_basic.pt", "legacy_basic.pt", "module_state.bin"])
def test_dump_matches_torch(name, tmp_path):
    for t in EXPECTED[name]["tensors"]:
        out = tmp_path / "t.npy"
        r = run("inspect", os.path.join(DATA, name), "--tensor", t["name"], "--dump", str(out))
        assert r.returncode == 0, r.stderr
        want = np.load(os.path.join(DATA, t["npy"]))
        got = np.load(out)
        assert got.dtype == np.float32 and list(got.shape) == t["shape"], t["name"]
        np.testing.assert_array_equal(got, want.astype(np.float32), err_msg=t["name"])


@pytest.mark.parametrize("name", ["zip_basic.pt", "legacy_basic.pt"])
def test_convert_safetensors_keeps_dtypes(name, tmp_path):
    out = tmp_path / "out.safetensors"
    r = run("convert", os.path.join(DATA, name), "-o", str(out))
    assert r.returncode == 0, r.stderr
    meta, tensors = read_safetensors(out)
    assert meta["format"] == "pt"
    exp = EXPECTED[name]["tensors"]
    assert list(tensors) == [t["name"] for t in exp]
    for t in exp:
        dtype, arr = tensors[t["name"]]
        assert dtype == t["dtype"] and list(arr.shape) == t["shape"]
        want = np.load(os.path.join(DATA, t["npy"]))
        np.testing.assert_array_equal(arr.astype(np.float64), want, err_msg=t["name"])


def test_convert_state_dict_strips_wrappers(tmp_path):
    out = tmp_path / "sd.safetensors"
    r = run("convert", os.path.join(DATA, "wrapped.ckpt"), "-o", str(out), "--state-dict")
    assert r.returncode == 0, r.stderr
    _, tensors = read_safetensors(out)
    assert sorted(tensors) == sorted(t["name"] for t in EXPECTED["module_state.bin"]["tensors"])
    want = np.load(os.path.join(DATA, "module_state.bin.fc.weight.npy"))
    np.testing.assert_array_equal(tensors["fc.weight"][1], want.astype(np.float32))


def test_convert_gguf(tmp_path):
    out = tmp_path / "m.gguf"
    r = run("convert", os.path.join(DATA, "zip_basic.pt"), "-o", str(out))
    assert r.returncode == 0, r.stderr
    reader = GGUFReader(str(out))
    by_name = {t.name: t for t in reader.tensors}
    for t in EXPECTED["zip_basic.pt"]["tensors"]:
        if t["dtype"] == "BF16":
            continue  # the gguf package returns raw bf16 bits
        g = by_name[t["name"]]
        want = np.load(os.path.join(DATA, t["npy"]))
        got = np.asarray(g.data).astype(np.float64).reshape(t["shape"])
        if t["dtype"] == "U8":  # stored as I8 (the same bytes)
            got = got.astype(np.int8).view(np.uint8).astype(np.float64)
        np.testing.assert_array_equal(got, want, err_msg=t["name"])


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_refused_naming_global(name, tmp_path):
    if os.path.exists(MARKER):
        os.remove(MARKER)
    path = os.path.join(DATA, name)
    r = run("inspect", path)
    assert r.returncode == 1 and f"global '{HOSTILE[name]}'" in r.stderr, r.stderr
    out = tmp_path / "x.safetensors"
    r = run("convert", path, "-o", str(out))
    assert r.returncode == 1 and HOSTILE[name] in r.stderr, r.stderr
    assert not out.exists() and os.listdir(tmp_path) == []
    assert not os.path.exists(MARKER)


@pytest.mark.parametrize("name,message", [
    ("truncated.pt", "no end-of-central-directory record"),
    ("corrupt_offset.pt", "central directory at byte"),
    ("truncated_legacy.pt", "truncated file"),
])
def test_corrupt_files_give_clear_errors(name, message):
    r = run("inspect", os.path.join(DATA, name))
    assert r.returncode == 1 and message in r.stderr, r.stderr


# --- hand-made checkpoints -----------------------------------------------------------------------

def zip_checkpoint(path, pkl, storages=None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        for key, data in (storages or {}).items():
            z.writestr(f"archive/data/{key}", data)


def u(s):  # BINUNICODE
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def tensor_pickle(shape, stride, offset=0, numel=4):
    """{'w': _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', numel), offset, ...)}"""
    ints = lambda xs: b"(" + b"".join(b"K" + bytes([x]) for x in xs) + b"t"  # noqa: E731
    return (b"\x80\x02}" + u("w") + b"ctorch._utils\n_rebuild_tensor_v2\n(" +
            b"(" + u("storage") + b"ctorch\nFloatStorage\n" + u("0") + u("cpu") +
            b"K" + bytes([numel]) + b"tQ" + b"K" + bytes([offset]) + ints(shape) + ints(stride) +
            b"\x89)tRs.")


def test_handmade_tensor_and_offsets(tmp_path):
    values = np.arange(6, dtype=np.float32)
    p = tmp_path / "ok.pt"  # zipfile leaves the data unaligned: the reader must copy
    zip_checkpoint(p, tensor_pickle([2, 2], [1, 2], offset=1, numel=6), {"0": values.tobytes()})
    out = tmp_path / "w.npy"
    r = run("inspect", str(p), "--tensor", "w", "--dump", str(out))
    assert r.returncode == 0, r.stderr
    # element (i, j) is storage[1 + i + 2 j]
    np.testing.assert_array_equal(np.load(out), np.array([[1, 3], [2, 4]], np.float32))


@pytest.mark.parametrize("case,pkl,storage,message", [
    ("past_storage", tensor_pickle([8], [1]), 16, "reaches past its storage"),
    ("missing_storage", tensor_pickle([4], [1]), None, "which the file does not hold"),
    ("deep", b"\x80\x02" + b"]" * 1000 + b"a" * 999 + b".", None, "nest deeper"),
    ("cycle", b"\x80\x02]q\x00h\x00a.", None, "cyclic"),
    ("huge_string", b"\x80\x02X\xff\xff\xff\x7f", None, "exceeds the limit"),
    ("short_string", b"\x80\x02X\xff\xff\xff\x00", None, "bytes but only"),
    ("memo", b"\x80\x02h\x07.", None, "memo index 7 was never stored"),
    ("no_stop", b"\x80\x02]", None, "ends before STOP"),
    ("reduce_data", b"\x80\x02ctorch\nfloat32\n)R.", None, "may appear as data but not be called"),
    ("module_pid", b"\x80\x02(" + u("module") + b"tQ.", None, "whole pickled modules"),
    ("ext", b"\x80\x02\x82\x01.", None, "extension registry"),
    ("os_stack_global", b"\x80\x04" + b"\x8c\x02os\x8c\x06system\x93.", None, "'os.system'"),
])
def test_handmade_malicious(tmp_path, case, pkl, storage, message):
    p = tmp_path / f"{case}.pt"
    zip_checkpoint(p, pkl, {"0": b"\0" * storage} if storage else None)
    r = run("inspect", str(p))
    assert r.returncode == 1 and message in r.stderr, (case, r.stderr)


@pytest.mark.parametrize("protocol", range(6))
def test_plain_values_every_protocol(tmp_path, protocol):
    value = {"a": [1, -7, 2.5, "x", "ünï", None, True, False, (1, 2)], "b": b"by\xfftes",
             "n": -(1 << 40), "s": {3}, "f": frozenset([4]), "nested": {"k": [[], {}]}}
    p = tmp_path / "v.pt"
    zip_checkpoint(p, pickle.dumps(value, protocol=protocol))
    j = inspect_json(str(p))
    v = j["values"]
    assert v["a"] == [1, -7, 2.5, "x", "ünï", None, True, False, [1, 2]]
    assert v["b"] == {"bytes": b"by\xfftes".hex()} and v["n"] == -(1 << 40)
    assert v["s"] == [3] and v["f"] == [4] and v["nested"] == {"k": [[], {}]}
    assert j["tensors"] == []
