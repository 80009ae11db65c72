#!/usr/bin/env bash
# On a machine with a real GPU (NVIDIA's, AMD's or Intel's Vulkan driver): build with Vulkan, list
# the devices, run the Vulkan tests on the GPU that automatic selection picks (not lavapipe), and
# measure the device kernels. Writes gpu_check.log, devices.json and bench.md to $OUT when it is
# set (else to build/gpu_check/). Meant to finish inside 9 minutes; EIGHT_GPU_CHECK_SECONDS sets
# the time per benchmark measurement (default 0.2).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build/gpu_check}
mkdir -p "$out"
log="$out/gpu_check.log"
exec > >(tee "$log") 2>&1

jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DEIGHT_BUILD_BENCH=OFF >/dev/null
cmake --build build -j "$jobs" --target eight backend_test_vulkan backend_test_vulkan_kernels

build/bin/eight --version
build/bin/eight devices
build/bin/eight devices --json > "$out/devices.json"

# The GPU automatic selection takes (a discrete one, else an integrated one); without one, say so
# and stop: lavapipe is CI's job.
device=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["devices"]
g = [x for t in ("discrete", "integrated") for x in d if x["type"] == t]
print("vulkan:%d" % g[0]["index"] if g else "")' "$out/devices.json")
if [[ -z "$device" ]]; then
  echo "gpu_check: no discrete or integrated GPU here; nothing to measure"
  exit 1
fi
echo "gpu_check: testing and measuring $device"

EIGHT_TEST_VULKAN_DEVICE=$device build/bin/backend_test_vulkan
EIGHT_TEST_VULKAN_DEVICE=$device build/bin/backend_test_vulkan_kernels

build/bin/eight bench --kernels --device "$device" --seconds "${EIGHT_GPU_CHECK_SECONDS:-0.2}" \
  | tee "$out/bench.md"
echo "gpu_check: done; results in $out"
