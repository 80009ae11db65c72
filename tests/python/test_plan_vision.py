"""`eight plan` on BLIP directories, WD tagger folders and DeepBooru files (the bill the memory
tests in tests/runtime/test_planner_{tagger,blip}.cpp hold to the measured peak), and the budget
check `eight tag`, `eight caption` and `eight ask` make before they run."""
import json
import os
import subprocess
from pathlib import Path

CLI = os.environ.get("EIGHT_CLI", "build/bin/eight")
DATA = Path(__file__).resolve().parents[1] / "data"


def run(*args):
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=120)


def plan_json(*args):
    r = run("plan", *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_plan_taggers_bill_the_batch():
    for model, arch in ((DATA / "wd" / "vit", "vit_base_patch16_224"),
                        (DATA / "wd" / "convnext", "convnext_base"),
                        (DATA / "wd" / "swinv2", "swinv2_base_window8_256"),
                        (DATA / "deepbooru" / "model-tiny.pt", "deepbooru")):
        one = plan_json(model, "--batch", "1", "-t", "1")
        four = plan_json(model, "--batch", "4", "-t", "1")
        assert one["architecture"] == arch and one["fits"] and one["batch"] == 1
        assert one["weight_bytes"] == four["weight_bytes"] > 0
        assert four["input_bytes"] == 4 * one["input_bytes"]
        assert four["activation_bytes"] > one["activation_bytes"]
        assert one["host_peak_bytes"] == (one["weight_bytes"] + one["input_bytes"] + max(
            one["activation_bytes"], one["preprocess_bytes"]) + one["scratch_bytes"])
        # A larger image to decode is billed when it outweighs the network.
        big = plan_json(model, "--batch", "1", "-t", "1", "-W", "4000", "-H", "3000")
        assert big["preprocess_bytes"] > 4000 * 3000 * 3
        assert big["host_peak_bytes"] > one["host_peak_bytes"]
        small = run("plan", model, "--ram", "100KiB")
        assert small.returncode == 1 and "does NOT fit" in small.stdout, small.stdout


def test_plan_blip_bills_beams_and_tokens():
    for model, arch in (("caption", "blip"), ("vqa", "blip-vqa")):
        d = DATA / "blip" / model
        greedy = plan_json(d, "--beams", "1", "--max-tokens", "10", "-t", "1")
        beams = plan_json(d, "--beams", "8", "--max-tokens", "38", "-t", "1")
        assert greedy["architecture"] == arch and greedy["fits"]
        assert greedy["weight_bytes"] == (d / ("model.safetensors" if model == "caption" else
                                               "pytorch_model.bin")).stat().st_size
        assert beams["decoder_bytes"] > greedy["decoder_bytes"]
        assert beams["host_peak_bytes"] == beams["weight_bytes"] + max(
            beams["vision_bytes"], beams["decoder_bytes"]) + beams["scratch_bytes"]
    assert run("plan", DATA / "blip" / "caption", "--beams", "0").returncode != 0


def test_commands_refuse_with_the_numbers_over_the_budget():
    tag = run("tag", "-m", DATA / "wd" / "vit", DATA / "wd" / "images" / "a.png", "--ram", "100KiB")
    assert tag.returncode != 0 and "needs" in tag.stderr and "--batch" in tag.stderr, tag.stderr
    ok = run("tag", "-m", DATA / "wd" / "vit", DATA / "wd" / "images" / "a.png", "--ram", "1GiB")
    assert ok.returncode == 0, ok.stderr
    cap = run("caption", "-m", DATA / "blip" / "caption", DATA / "blip" / "gradient.png",
              "--ram", "100KiB")
    assert cap.returncode != 0 and "needs" in cap.stderr and "budget" in cap.stderr, cap.stderr
    ask = run("ask", "-m", DATA / "blip" / "vqa", DATA / "blip" / "gradient.png", "-q", "what?",
              "--ram", "100KiB")
    assert ask.returncode != 0 and "needs" in ask.stderr, ask.stderr
