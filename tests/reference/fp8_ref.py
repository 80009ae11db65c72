#!/usr/bin/env python3
"""float64 numpy decoding of every float8 code, for tests/backend/test_fp8.cpp.

  python tests/reference/fp8_ref.py        # writes tests/data/fp8/{e4m3fn,e5m2}.npy

Both from the bit layouts (OCP 8-bit floating point specification, the formats torch calls
float8_e4m3fn and float8_e5m2): sign, exponent, mantissa; e4m3fn has bias 7, no infinities, and
S.1111.111 is NaN; e5m2 has bias 15 with IEEE infinities and NaNs. When torch is importable the
tables are also checked against torch's own casts.
"""
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "fp8")


def decode(code, exp_bits, man_bits, bias, ieee_special):
    sign = -1.0 if code & 0x80 else 1.0
    e = (code >> man_bits) & ((1 << exp_bits) - 1)
    m = code & ((1 << man_bits) - 1)
    top = (1 << exp_bits) - 1
    if ieee_special and e == top:
        return sign * np.inf if m == 0 else np.nan
    if not ieee_special and e == top and m == (1 << man_bits) - 1:
        return np.nan
    if e == 0:
        return sign * m / (1 << man_bits) * 2.0 ** (1 - bias)
    return sign * (1 + m / (1 << man_bits)) * 2.0 ** (e - bias)


def tables():
    e4m3 = np.array([decode(c, 4, 3, 7, False) for c in range(256)], np.float64)
    e5m2 = np.array([decode(c, 5, 2, 15, True) for c in range(256)], np.float64)
    return e4m3, e5m2


def main():
    os.makedirs(OUT, exist_ok=True)
    e4m3, e5m2 = tables()
    assert np.nanmax(e4m3) == 448 and np.nanmax(e5m2[np.isfinite(e5m2)]) == 57344
    try:
        import torch
        codes = torch.arange(256, dtype=torch.int32).to(torch.uint8)
        for table, dt in ((e4m3, torch.float8_e4m3fn), (e5m2, torch.float8_e5m2)):
            ref = codes.view(dt).double().numpy()
            assert np.array_equal(ref, table, equal_nan=True), dt
        print("tables agree with torch", torch.__version__)
    except ImportError:
        pass
    # float32 holds every value exactly.
    np.save(os.path.join(OUT, "e4m3fn.npy"), e4m3.astype(np.float32))
    np.save(os.path.join(OUT, "e5m2.npy"), e5m2.astype(np.float32))


if __name__ == "__main__":
    main()
