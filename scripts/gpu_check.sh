#!/usr/bin/env bash
# On a machine with a real GPU (NVIDIA's, AMD's or Intel's Vulkan driver): build with Vulkan, list
# the devices, run the Vulkan tests on the GPU that automatic selection picks (not lavapipe),
# measure the device kernels, and benchmark TinyLlama-shaped and Mistral-7B-shaped Q4_K_M files
# (random weights from tools/gen_llm) fully offloaded. Writes gpu_check.log, devices.json,
# bench.md and results.json to $OUT when it is set (else to build/gpu_check/). Meant to finish
# inside 9 minutes.
#
#   EIGHT_GPU_CHECK_DEVICE=vulkan:N   test and measure that device instead (lavapipe included)
#   EIGHT_GPU_CHECK_SMALL=1           tiny model shapes and short runs (lavapipe shows the script
#                                     works, not how fast a GPU is)
#   EIGHT_GPU_CHECK_SECONDS=S         time per kernel measurement (default 0.2)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build/gpu_check}
mkdir -p "$out"
log="$out/gpu_check.log"
exec > >(tee "$log") 2>&1
small=${EIGHT_GPU_CHECK_SMALL:-0}

jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs" --target eight gen_llm backend_test_vulkan \
  backend_test_vulkan_kernels models_test_llm_vulkan

build/bin/eight --version
build/bin/eight devices
build/bin/eight devices --json > "$out/devices.json"

# The GPU automatic selection takes (a discrete one, else an integrated one); without one, say so
# and stop: lavapipe is CI's job unless it is named.
device=${EIGHT_GPU_CHECK_DEVICE:-$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["devices"]
g = [x for t in ("discrete", "integrated") for x in d if x["type"] == t]
print("vulkan:%d" % g[0]["index"] if g else "")' "$out/devices.json")}
if [[ -z "$device" ]]; then
  echo "gpu_check: no discrete or integrated GPU here; nothing to measure" \
    "(EIGHT_GPU_CHECK_DEVICE=vulkan:N names one)"
  exit 1
fi
echo "gpu_check: testing and measuring $device"

export EIGHT_TEST_VULKAN_DEVICE=$device
build/bin/backend_test_vulkan
build/bin/backend_test_vulkan_kernels
build/bin/models_test_llm_vulkan

seconds=${EIGHT_GPU_CHECK_SECONDS:-0.2}
kernel_types=()
[[ "$small" == 1 ]] && kernel_types=(--type q4_K --type q8_0)
build/bin/eight bench --kernels --device "$device" --seconds "$seconds" "${kernel_types[@]}" \
  | tee "$out/bench.md"

# Whole models, every layer and the output layer on the GPU.
models=build/gpu_check/models
mkdir -p "$models"
if [[ "$small" == 1 ]]; then
  shapes=("small:--layers 4 --embd 512 --heads 8 --kv-heads 4 --ffn 1024")
  pp=32 ng=16 reps=1
else
  shapes=("tinyllama-1.1b:--preset tinyllama-1.1b" "mistral-7b:--preset mistral-7b")
  pp=512 ng=128 reps=2
fi
results=()
for entry in "${shapes[@]}"; do
  name=${entry%%:*}
  file=$models/$name-q4_k_m.gguf
  [[ -f "$file" ]] || build/bin/gen_llm ${entry#*:} --type Q4_K_M --out "$file"
  echo "gpu_check: eight bench -m $file on $device"
  build/bin/eight bench -m "$file" --device "$device" -ngl 999 -p "$pp" -n "$ng" -r "$reps" \
    --json | tee "$out/bench-$name.json"
  results+=("$out/bench-$name.json")
done
python3 - "$out/results.json" "$device" "$out/devices.json" "${results[@]}" <<'EOF'
import json, sys
out, device, devices, *runs = sys.argv[1:]
json.dump({"device": device, "devices": json.load(open(devices))["devices"],
           "models": [json.load(open(r)) for r in runs]}, open(out, "w"), indent=1)
EOF
echo "gpu_check: done; results in $out"
