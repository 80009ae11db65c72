"""--device and -ngl on the LLM commands, the server and the benchmark: the same greedy text on the
CPU, fully and partly on a Vulkan device (lavapipe in CI, named: it is never picked on its own),
clear errors for devices that do not exist, and the CPU with one line when no GPU is usable."""
import json
import os
import subprocess
import urllib.request

import pytest

from server_util import CLI, SHARED, SOURCE, ServeProcess

MODEL = str(SOURCE / "models" / "eight-demo.gguf")


def eight(*args, env=None):
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=600,
                          env=env)


@pytest.fixture(scope="module")
def lavapipe():
    r = eight("devices", "--json")
    assert r.returncode == 0, r.stderr
    for d in json.loads(r.stdout)["devices"]:
        if "llvmpipe" in d["name"]:
            return f"vulkan:{d['index']}"
    pytest.skip("SKIPPED: no lavapipe (llvmpipe) Vulkan device; install mesa-vulkan-drivers")


def greedy(*device_args):
    r = eight("run", "-m", MODEL, "-p", "A cat is", "--temp", "0", "-n", "16", "--json", "-t", "2",
              *device_args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["tokens"]


def test_same_greedy_tokens_on_cpu_and_gpu(lavapipe):
    cpu = greedy("--device", "cpu")
    assert cpu
    assert greedy("--device", lavapipe, "-ngl", "99") == cpu  # every layer and the output
    assert greedy("--device", lavapipe, "-ngl", "1") == cpu  # the last layer only


def test_unknown_devices_are_clear_errors():
    r = eight("run", "-m", MODEL, "-p", "hi", "-n", "1", "--device", "vulkan:99")
    assert r.returncode != 0 and "no device 'vulkan:99'" in r.stderr, r.stderr
    r = eight("run", "-m", MODEL, "-p", "hi", "-n", "1", "--device", "gpu")
    assert r.returncode != 0 and "unknown device 'gpu'" in r.stderr, r.stderr
    r = eight("run", "-m", MODEL, "-p", "hi", "-n", "1", "-ngl", "-5")
    assert r.returncode != 0 and "--gpu-layers" in r.stderr, r.stderr


def test_no_usable_gpu_runs_on_the_cpu(lavapipe):
    # lavapipe is a CPU-type device: "auto" and "vulkan" never take it, and the run goes on.
    env = {**os.environ, "EIGHT_LOG": "info"}
    devices = json.loads(eight("devices", "--json").stdout)["devices"]
    if any(d["type"] in ("discrete", "integrated") for d in devices):
        pytest.skip("SKIPPED: this machine has a real GPU, which auto would take")
    for device in ("auto", "vulkan"):
        r = eight("run", "-m", MODEL, "-p", "A cat is", "--temp", "0", "-n", "4", "--device",
                  device, env=env)
        assert r.returncode == 0, r.stderr
        lines = [l for l in r.stderr.splitlines() if "no usable GPU" in l]
        assert len(lines) == 1 and "running on the CPU" in lines[0], r.stderr


def test_server_on_the_gpu(lavapipe):
    s = ServeProcess("-m", MODEL, "--device", lavapipe, "-ngl", "99", threads=2)
    try:
        body = json.dumps({"messages": [{"role": "user", "content": "What is a cat?"}],
                           "max_tokens": 8, "temperature": 0}).encode()
        req = urllib.request.Request(s.url + "/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as resp:
            out = json.loads(resp.read())
        assert out["choices"][0]["message"]["content"].strip()
    finally:
        s.stop()


def test_bench_reports_the_device(lavapipe):
    r = eight("bench", "-m", MODEL, "--device", lavapipe, "-ngl", "99", "-p", "8", "-n", "4", "-r",
              "1", "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["device"].startswith(lavapipe) and "layers + output" in j["device"]
    assert j["device_peak_bytes"] > 0 and j["tg_tokens_per_s"] > 0 and j["memory_read_gbps"] > 0


def test_transcribe_with_the_encoder_on_the_gpu(lavapipe):
    golden = SHARED / "golden" / "whisper"
    if not (golden / "whisper-tiny-f16.bin").exists():
        pytest.skip("SKIPPED: ../shared/golden/whisper is not beside the project")

    def text(device):
        r = eight("transcribe", "-m", golden / "whisper-tiny-f16.bin", golden / "jfk.wav",
                  "--device", device, "--beam-size", "1", "--no-fallback", "--max-tokens", "32",
                  "--json", "-t", "2")
        assert r.returncode == 0, r.stderr
        return [s["text"] for s in json.loads(r.stdout)["segments"]]

    cpu = text("cpu")
    assert cpu
    assert text(lavapipe) == cpu


def test_vram_caps_what_the_planner_places(lavapipe):
    env = {**os.environ, "EIGHT_LOG": "info"}
    # 520 MiB leaves 8 MiB after the driver's 512 MiB: the output layer fits, no decoder layer.
    r = eight("run", "-m", MODEL, "-p", "A cat is", "--temp", "0", "-n", "16", "--json", "-t", "2",
              "--device", lavapipe, "--vram", "520MiB", env=env)
    assert r.returncode == 0, r.stderr
    assert "0 of 4 layers and the output layer on " + lavapipe in r.stderr, r.stderr
    assert json.loads(r.stdout)["tokens"] == greedy("--device", "cpu")
    r = eight("run", "-m", MODEL, "-p", "hi", "-n", "1", "--device", lavapipe, "--vram", "100MiB")
    assert r.returncode != 0 and "--vram" in r.stderr and "reserve" in r.stderr, r.stderr
