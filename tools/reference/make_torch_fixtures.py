#!/usr/bin/env python3
"""Small PyTorch checkpoints for eight's safe checkpoint reader (tests/data/torch/).

Run with a Python that has torch (the tests themselves never need torch):
    /work/diff-venv/bin/python tools/reference/make_torch_fixtures.py [OUT_DIR]

Writes, all with torch.save as users' files are written:
  zip_basic.pt      zip format: f32/f16/bf16/f64/i64/i32/i16/i8/u8/bool tensors, a view with a
                    storage offset, two names sharing one storage, a transposed (non-contiguous)
                    tensor, a nested dict with a `tags` list, numbers, a numpy scalar, torch.Size,
                    torch.device, a set, and a Parameter.
  legacy_basic.pt   the same object with _use_new_zipfile_serialization=False.
  module_state.bin  an nn.Module state_dict() (OrderedDict with _metadata), HF-style.
  wrapped.ckpt      {"state_dict": {"module.<key>": ...}, "epoch": 3} (Lightning/DataParallel).
  best_state.bin    audiocraft-style {"best_state": {...}, "xp.cfg": yaml, "version", "exported"}.
  evil_system.pt, evil_eval.pt, evil_popen.pt, evil_legacy.pt: zip/legacy checkpoints whose
                    pickle calls os.system / builtins.eval / subprocess.Popen when unpickled.
  truncated.pt, corrupt_offset.pt, truncated_legacy.pt: damaged copies.
  expected.json     per file: tensor names, dtypes, shapes; the non-tensor values to check.
  <file>.<tensor>.npy  each tensor's values as float64 (bool/ints exactly).
"""
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
from collections import OrderedDict

import numpy as np
import torch

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "..", "tests", "data", "torch")


def basic_object():
    g = torch.Generator().manual_seed(8)
    base = torch.randn(4, 5, generator=g)
    shared = torch.arange(12, dtype=torch.float32)
    param = torch.nn.Parameter(torch.randn(3, generator=g))
    return {
        "f32": base,
        "f16": torch.randn(2, 3, generator=g).half(),
        "bf16": torch.randn(3, 2, generator=g).bfloat16(),
        "f64": torch.randn(2, 2, generator=g).double(),
        "i64": torch.tensor([[1, -2, 3], [1 << 40, 5, -(1 << 33)]], dtype=torch.int64),
        "i32": torch.tensor([7, -8, 9], dtype=torch.int32),
        "i16": torch.tensor([300, -300], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 5], dtype=torch.int8),
        "u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True, True]),
        "scalar": torch.tensor(2.5),
        "view": base[1:3],  # storage offset 5 into base's storage
        "shared_a": shared[:6].view(2, 3),
        "shared_b": shared[6:],  # same storage, offset 6
        "transposed": torch.randn(3, 4, generator=g).t(),  # non-contiguous
        "param": param,
        "meta": {
            "tags": ["1girl", "solo", "rating:safe", "ünïcode"],
            "count": 3,
            "big": 1 << 40,
            "ratio": 0.25,
            "flag": True,
            "nothing": None,
            "np_scalar": np.float64(0.5),
            "size": torch.Size([2, 3]),
            "device": torch.device("cpu"),
            "ids": {1, 2},
            "pair": (1, "two"),
            "blob": b"\x00\x01bytes",
            "nested": {"inner": {"w": torch.ones(2, dtype=torch.float16)}},
        },
    }


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        self.norm = torch.nn.LayerNorm(3)
        self.register_buffer("steps", torch.tensor(7, dtype=torch.int64))


class Evil:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def to_json(v):
    if isinstance(v, dict):
        return {str(k): to_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    if isinstance(v, (set, frozenset)):
        return sorted(to_json(x) for x in v)
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, torch.device):
        return str(v)
    return v


DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.float64: "F64", torch.int64: "I64", torch.int32: "I32", torch.int16: "I16",
          torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def walk(obj, prefix, out):
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            walk(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(obj, (list, tuple)) and not isinstance(obj, torch.Size):
        for i, v in enumerate(obj):
            walk(v, f"{prefix}.{i}" if prefix else str(i), out)


def save(name, obj, expected, legacy=False, values=None):
    path = os.path.join(OUT, name)
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    back = torch.load(path, weights_only=False)  # the reference reader agrees with our object
    tensors = {}
    walk(back, "", tensors)
    entry = {"format": "legacy" if legacy else "zip", "tensors": []}
    for tname, t in tensors.items():
        npy = f"{name}.{tname}.npy"
        np.save(os.path.join(OUT, npy), t.detach().to(torch.float64).numpy())
        entry["tensors"].append({"name": tname, "dtype": DTYPES[t.dtype],
                                 "shape": list(t.shape), "npy": npy})
    if values is not None:
        entry["values"] = to_json(values)
    expected[name] = entry


def write_evil(name, fn, args, legacy=False):
    torch.save({"weight": torch.zeros(2), "payload": Evil(fn, args)},
               os.path.join(OUT, name), _use_new_zipfile_serialization=not legacy)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    expected = {}
    obj = basic_object()
    meta_values = {k: v for k, v in obj["meta"].items() if k != "nested"}
    save("zip_basic.pt", obj, expected, values={"meta": meta_values})
    save("legacy_basic.pt", obj, expected, legacy=True, values={"meta": meta_values})

    torch.manual_seed(3)
    sd = Net().state_dict()
    assert hasattr(sd, "_metadata")
    save("module_state.bin", sd, expected)
    save("wrapped.ckpt", {"state_dict": OrderedDict(("module." + k, v) for k, v in sd.items()),
                          "epoch": 3, "global_step": 120}, expected,
         values={"epoch": 3, "global_step": 120})
    cfg = "transformer_lm:\n  dim: 4\n  num_heads: 2\n"
    save("best_state.bin", {"best_state": {"transformer.w": torch.eye(2)}, "xp.cfg": cfg,
                            "version": "1.3.0", "exported": True}, expected,
         values={"xp.cfg": cfg, "version": "1.3.0", "exported": True})

    marker = "/tmp/eight_torch_fixture_pwned"
    write_evil("evil_system.pt", os.system, (f"touch {marker}",))
    write_evil("evil_eval.pt", eval, (f"open('{marker}', 'w')",))
    write_evil("evil_popen.pt", subprocess.Popen, (["touch", marker],))
    write_evil("evil_legacy.pt", os.system, (f"touch {marker}",), legacy=True)
    expected["hostile"] = {"evil_system.pt": f"{os.system.__module__}.system",
                           "evil_eval.pt": "builtins.eval",
                           "evil_popen.pt": "subprocess.Popen",
                           "evil_legacy.pt": f"{os.system.__module__}.system",
                           "marker": marker}

    raw = open(os.path.join(OUT, "zip_basic.pt"), "rb").read()
    open(os.path.join(OUT, "truncated.pt"), "wb").write(raw[: len(raw) // 2])
    # The end-of-central-directory record's "offset of the central directory" points past the end.
    eocd = raw.rfind(b"PK\x05\x06")
    bad = bytearray(raw)
    struct.pack_into("<I", bad, eocd + 16, len(raw) + 1000)
    open(os.path.join(OUT, "corrupt_offset.pt"), "wb").write(bytes(bad))
    leg = open(os.path.join(OUT, "legacy_basic.pt"), "rb").read()
    open(os.path.join(OUT, "truncated_legacy.pt"), "wb").write(leg[: len(leg) - 100])
    assert zipfile.is_zipfile(io.BytesIO(raw))

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
