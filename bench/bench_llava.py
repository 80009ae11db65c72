#!/usr/bin/env python3
"""LLaVA 1.6 on the CPU: eight against llama.cpp's llama-mtmd-cli, same files, same threads,
interleaved runs, medians and ratios from one run.

Each repetition runs both programs once, in alternating order, on the same LLM GGUF, mmproj GGUF
and image, and reads the times each prints about itself (model loading is outside both):
  eight   `eight bench -m LLM --mmproj MMPROJ --image IMG -r 1 --json`: encode_ms (anyres tiles
          through the tower, projector, packing) and ttft_ms (encode + prefill of the whole prompt
          with the image rows + the first token);
  llama   `llama-mtmd-cli ... -n 1 --temp 0 -lv 4`: "mtmd batch encoding done in N ms" (the
          image's slices through the tower and projector) and llama_perf's "prompt eval time"
          (every prompt chunk, the image encode included, up to the first token's logits).
The prompt is eight's default ("<image>\\nDescribe this image in detail."); llama-mtmd-cli wraps
it in a chat template (--chat-template, default vicuna: a few tokens more, nothing beside the
image's thousands). Both programs are asked for the same thread count.

llama-mtmd-cli is not built by this project: build llama.cpp yourself (CPU only) and pass the
binary. Files: `tools/gen_llm` writes a Mistral-shaped Q4_K_M LLM (any layer count),
`tools/gen_llava_mmproj.py` a random ViT-L/14-336 mmproj shaped like llava-v1.6's.

  python3 bench/bench_llava.py --eight build/bin/eight --mtmd /path/to/llama-mtmd-cli \\
      -m mistral.gguf --mmproj mmproj.gguf --image img672.png -t 2 -r 3
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import time

PROMPT = "<image>\nDescribe this image in detail."


def run_eight(a):
    cmd = [a.eight, "bench", "-m", a.model, "--mmproj", a.mmproj, "--image", a.image, "-r", "1",
           "-t", str(a.threads), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    j = json.loads(out.strip().splitlines()[-1])
    return {"encode_ms": j["encode_ms"], "ttft_ms": j["ttft_ms"],
            "image_tokens": j["image_tokens"], "prompt_tokens": j["prompt_tokens"]}


def run_llama(a):
    prompt = PROMPT.replace("<image>", "<__media__>")
    cmd = [a.mtmd, "-m", a.model, "--mmproj", a.mmproj, "--image", a.image, "-p", prompt,
           "-n", "1", "--temp", "0", "-t", str(a.threads), "--chat-template", a.chat_template,
           "-lv", "4"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    log = p.stdout + p.stderr
    if p.returncode != 0:
        raise SystemExit(f"llama-mtmd-cli failed ({p.returncode}):\n{log[-3000:]}")
    enc = [float(x) for x in re.findall(r"mtmd batch encoding done in (\d+(?:\.\d+)?) ms", log)]
    img = re.findall(r"decoding image batch \d+/\d+, n_tokens_batch = (\d+)", log)
    pe = re.search(r"prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens", log)
    if not enc or not pe:
        raise SystemExit("could not read llama-mtmd-cli's timings:\n" + log[-3000:])
    return {"encode_ms": sum(enc), "ttft_ms": float(pe.group(1)),
            "image_tokens": sum(int(n) for n in img), "prompt_tokens": int(pe.group(2))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eight", default="build/bin/eight")
    ap.add_argument("--mtmd", required=True, help="llama.cpp's llama-mtmd-cli binary")
    ap.add_argument("-m", "--model", required=True, help="the LLM GGUF")
    ap.add_argument("--mmproj", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count())
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("--chat-template", default="vicuna")
    ap.add_argument("--json", action="store_true", help="print one JSON object at the end")
    a = ap.parse_args()

    runs = {"eight": [], "llama": []}
    loads = []
    for r in range(a.reps):
        order = ["eight", "llama"] if r % 2 == 0 else ["llama", "eight"]
        for who in order:
            loads.append(os.getloadavg()[0])
            t0 = time.time()
            res = run_eight(a) if who == "eight" else run_llama(a)
            res["wall_s"] = time.time() - t0
            runs[who].append(res)
            print(f"rep {r + 1} {who:5s}: encode {res['encode_ms']:9.1f} ms  ttft "
                  f"{res['ttft_ms']:9.1f} ms  ({res['image_tokens']} image tokens, "
                  f"{res['prompt_tokens']} prompt tokens)", flush=True)

    med = {who: {k: statistics.median(x[k] for x in rs) for k in ("encode_ms", "ttft_ms")}
           for who, rs in runs.items()}
    summary = {
        "threads": a.threads, "reps": a.reps, "load_min": min(loads), "load_max": max(loads),
        "eight": med["eight"], "llama_mtmd_cli": med["llama"],
        "eight_image_tokens": runs["eight"][0]["image_tokens"],
        "llama_image_tokens": runs["llama"][0]["image_tokens"],
        "encode_speedup": med["llama"]["encode_ms"] / med["eight"]["encode_ms"],
        "ttft_speedup": med["llama"]["ttft_ms"] / med["eight"]["ttft_ms"],
    }
    print(f"median of {a.reps}, {a.threads} threads, load {min(loads):.2f}-{max(loads):.2f}:")
    for k in ("encode_ms", "ttft_ms"):
        print(f"  {k:10s} eight {med['eight'][k]:9.1f}  llama-mtmd-cli {med['llama'][k]:9.1f}  "
              f"ratio {med['llama'][k] / med['eight'][k]:.2f}x")
    if a.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
