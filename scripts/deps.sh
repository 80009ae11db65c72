#!/usr/bin/env bash
# Installs what eight needs on Debian 12: build tools and libraries (apt-get), and with --test the
# Python test references (numpy, pytest, jinja2, tokenizers, openai) into ./.venv from PyPI.
# As root it installs; otherwise it prints the exact apt-get line and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake ninja-build ccache pkg-config git
      libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libcpp-httplib-dev
      libpcre2-dev libstb-dev libsndfile1-dev libsamplerate0-dev libcurl4-openssl-dev zlib1g-dev
      libwebp-dev libvulkan-dev glslc
      python3 python3-venv python3-pip)
TEST_PKGS=(clang libclang-rt-14-dev espeak-ng sox wordnet-base mesa-vulkan-drivers
           chromium chromium-driver nginx)

want=("${PKGS[@]}")
[[ "${1:-}" == "--test" ]] && want+=("${TEST_PKGS[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "eight: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "eight: missing Debian packages. Install them with:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if [[ "${1:-}" == "--test" ]]; then
  if [[ ! -x .venv/bin/python3 ]]; then
    /usr/bin/python3 -m venv .venv
  fi
  stamp=.venv/.eight-requirements
  if ! cmp -s tools/requirements-test.txt "$stamp" 2>/dev/null; then
    .venv/bin/python3 -m pip install -q --disable-pip-version-check -r tools/requirements-test.txt
    cp tools/requirements-test.txt "$stamp"
  fi
fi
