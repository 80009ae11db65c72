"""`eight plan` on a whisper.cpp file: the memory bill from its headers, and the RAM verdict."""
import json
import subprocess

from whisper_util import CLI, make_model


def plan(*args):
    return subprocess.run([CLI, "plan", *map(str, args)], capture_output=True, text=True,
                          timeout=60)


def test_plan_whisper_file_bills_weights_caches_and_verdict(tmp_path):
    model = tmp_path / "ggml-random.bin"
    make_model(model)
    one = plan(model, "--json", "--beams", "1")
    assert one.returncode == 0, one.stderr
    j1 = json.loads(one.stdout)
    parts = ("weights", "file_overhead", "misaligned_copies", "encoder", "cross_kv", "self_kv",
             "decoder")
    assert j1["architecture"] == "whisper" and j1["fits"]
    assert j1["total"] == sum(j1[k] for k in parts)
    assert all(j1[k] >= 0 for k in parts) and j1["weights"] > 0 and j1["cross_kv"] > 0
    # Five hypotheses keep five self-attention caches; everything else is shared.
    five = json.loads(plan(model, "--json", "--beams", "5").stdout)
    assert five["self_kv"] == 5 * j1["self_kv"]
    assert five["cross_kv"] == j1["cross_kv"] and five["weights"] == j1["weights"]
    # Too little RAM: the verdict says so and the exit status is 1.
    small = plan(model, "--ram", "1MiB")
    assert small.returncode == 1 and "does NOT fit" in small.stdout
    text = plan(model)
    assert text.returncode == 0 and "fits" in text.stdout and "cross-attn K/V" in text.stdout
    bad = plan(model, "--beams", "0")
    assert bad.returncode != 0 and "--beams" in bad.stderr
