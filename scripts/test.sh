#!/usr/bin/env bash
# README command 2: install dependencies (Debian packages and the Python test references), build
# everything with warnings as errors, run every test through CTest, then run each fuzz target for a
# bounded time (a fixed total budget shared by the targets, so the whole run stays well inside CI's
# 30 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
jobs=$(nproc)
scripts/configure.sh
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j "$jobs" --timeout 1200)

# Fuzzing: every target is built first, then the targets run `jobs` at a time. Each runs for
# EIGHT_FUZZ_SECONDS when set (0 skips fuzzing), else for its share of a fixed wall-clock budget
# (EIGHT_FUZZ_BUDGET, default 240 s), at least 10 s, so adding targets does not grow CI's time.
fuzz_targets=()
for src in tests/fuzz/fuzz_*.cpp; do
  [[ -e "$src" ]] && fuzz_targets+=("$(basename "$src" .cpp)")
done
n_fuzz=${#fuzz_targets[@]}
budget=${EIGHT_FUZZ_BUDGET:-240}
fuzz_seconds=${EIGHT_FUZZ_SECONDS:-$(((budget * jobs + n_fuzz - 1) / (n_fuzz > 0 ? n_fuzz : 1)))}
((fuzz_seconds < 10 && fuzz_seconds != 0)) && fuzz_seconds=10
if [[ "$fuzz_seconds" != 0 && "$n_fuzz" -gt 0 ]]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DEIGHT_BUILD_FUZZ=ON -DEIGHT_BUILD_TESTS=ON -DEIGHT_BUILD_BENCH=OFF -DEIGHT_ENABLE_VULKAN=OFF \
    >/dev/null
  cmake --build build-fuzz --target "${fuzz_targets[@]}" -j "$jobs"
  mkdir -p build-fuzz/logs
  run_fuzz() {
    local name=$1 seeds=tests/fuzz/seeds/$1 corpus=build-fuzz/corpus-$1
    mkdir -p "$corpus"
    local status=0
    build-fuzz/bin/"$name" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 -artifact_prefix="build-fuzz/logs/$name-" "$corpus" \
      $([[ -d $seeds ]] && echo "$seeds") >"build-fuzz/logs/$name.log" 2>&1 || status=$?
    echo "fuzz: $name for ${fuzz_seconds}s (exit $status)"
    tail -n 12 "build-fuzz/logs/$name.log"
    return "$status"
  }
  export -f run_fuzz
  export fuzz_seconds
  printf '%s\n' "${fuzz_targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_fuzz {}'
fi
echo "eight: all tests passed"
