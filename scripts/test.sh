#!/usr/bin/env bash
# README command 2: install dependencies (Debian packages and the Python test references), build
# everything with warnings as errors, run every test through CTest, then run each fuzz target for a
# bounded time (EIGHT_FUZZ_SECONDS, default 30 for each of the eight targets, so the whole run stays
# well inside CI's 30 minutes; 0 skips).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
jobs=$(nproc)
scripts/configure.sh
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j "$jobs" --timeout 1200)

fuzz_seconds=${EIGHT_FUZZ_SECONDS:-30}
if [[ "$fuzz_seconds" != 0 && -d tests/fuzz && -n "$(ls tests/fuzz/fuzz_*.cpp 2>/dev/null)" ]]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DEIGHT_BUILD_FUZZ=ON -DEIGHT_BUILD_TESTS=ON -DEIGHT_BUILD_BENCH=OFF -DEIGHT_ENABLE_VULKAN=OFF \
    >/dev/null
  for src in tests/fuzz/fuzz_*.cpp; do
    name=$(basename "$src" .cpp)
    cmake --build build-fuzz --target "$name" -j "$jobs"
    corpus=build-fuzz/corpus-$name
    mkdir -p "$corpus"
    seeds=tests/fuzz/seeds/$name
    echo "fuzz: $name for ${fuzz_seconds}s"
    build-fuzz/bin/"$name" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 "$corpus" $( [[ -d $seeds ]] && echo "$seeds" ) 2>&1 | tail -n 12
  done
fi
echo "eight: all tests passed"
