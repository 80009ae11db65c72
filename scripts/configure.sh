#!/usr/bin/env bash
# Configures build/ the one way both README commands use, so that running them in either order (or
# again) reuses one build instead of rebuilding everything with other flags. Warnings are errors:
# the tree is kept warning-free on Debian 12's compilers, and CI builds exactly what users build.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DEIGHT_WERROR=ON "$@" >/dev/null
