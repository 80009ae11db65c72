#!/usr/bin/env bash
# README command 1: install dependencies, build everything, and run the main job on the bundled
# default: a chat with models/eight-demo.gguf (a tiny model trained for this repository; see
# models/README.md). Extra arguments go to `eight chat` (e.g. -p "What is a cat?" for one answer).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/configure.sh
cmake --build build -j "$(nproc)"
echo
echo "eight: chatting with the bundled demo model (models/eight-demo.gguf). Try 'What is a cat?';"
echo "       /reset clears the history, /exit or Ctrl-D quits. See 'eight --help' for everything else."
exec build/bin/eight chat -m models/eight-demo.gguf "$@"
