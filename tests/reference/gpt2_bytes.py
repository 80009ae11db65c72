"""GPT-2's reversible map from the 256 byte values to printable unicode characters (the byte-level
alphabet of GPT-2, CLIP and Qwen2 BPE vocabularies), shared by the random-model writers."""


def byte_to_unicode():
    """{byte value: its one-character token}."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}
