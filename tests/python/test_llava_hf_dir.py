"""`-m DIR` with a Hugging Face LLaVA-NeXT directory and no --mmproj (tests/data/llava/tiny: the
tiny random LlavaNextForConditionalGeneration of tools/reference/make_llava_fixtures.py, its
tokenizer from tools/reference/make_llava_tokenizer.py), and `eight plan` with a vision encoder.

Pass conditions: logits through the directory (text weights bound in place from the safetensors,
rotate-half q/k with neox rotary) equal those of the converted GGUF pair within NMSE 1e-10 and
transformers' within 1e-4; `run -p "ab<image>cd"` gives transformers' greedy tokens and, around
the image, the ids transformers' LlavaNextProcessor gives for the same text and image; the plan
JSON bills the vision encoder and holds one image's tokens in the context."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

SOURCE = pathlib.Path(os.environ.get("EIGHT_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
CLI = os.environ.get("EIGHT_CLI", str(SOURCE / "build" / "bin" / "eight"))
DATA = SOURCE / "tests" / "data" / "llava"
TINY = DATA / "tiny"
LOGITS = json.loads((DATA / "logits.json").read_text())
IMAGE_ID = LOGITS["image_token_index"]


def need_cli():
    if not os.path.exists(CLI):
        pytest.skip(f"SKIPPED: {CLI} is not built")


def eight(*args, **kw):
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=120, **kw)
    assert r.returncode == 0, r.stderr
    return r


def logits(tmp_path, model, case, *extra):
    out = tmp_path / "l.npy"
    ids = [-1 if t == IMAGE_ID else t for t in case["tokens"]]
    eight("logits", "-m", model, *extra, "--image", DATA / case["image"], "--tokens",
          ",".join(map(str, ids)), "-o", out, "-t", "2")
    return np.load(out).astype(np.float64)


def nmse(a, b):
    return float(((a - b) ** 2).sum() / (b ** 2).sum())


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The same directory converted to llama.cpp's pair (F32)."""
    need_cli()
    d = tmp_path_factory.mktemp("pair")
    eight("convert", TINY, "-o", d / "tiny.gguf", "--type", "f32")
    return d / "tiny.gguf", d / "mmproj-tiny.gguf"


@pytest.mark.parametrize("case", LOGITS["cases"][:2], ids=lambda c: c["image"])
def test_logits_from_directory(tmp_path, pair, case):
    got = logits(tmp_path, TINY, case)
    ref = logits(tmp_path, pair[0], case, "--mmproj", TINY)
    want = np.load(DATA / case["logits"]).astype(np.float64)
    assert got.shape == ref.shape == want.shape
    e_pair, e_hf = nmse(got, ref), nmse(got, want)
    print(f"{case['image']}: NMSE vs GGUF pair {e_pair:.2e}, vs transformers {e_hf:.2e}")
    assert e_pair <= 1e-10 and e_hf <= 1e-4


def spm_directory(tmp_path):
    """The tiny weights with a Llama-2 / Mistral style tokenizer.json (SentencePiece BPE with byte
    fallback, the legacy Prepend("▁") normalizer llama.cpp's add_space_prefix follows), "<image>"
    the special added token 300."""
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"<0x{b:02X}>": 3 + b for b in range(256)})
    for t in ["▁", "a", "b", "c", "d", "I", "N", "S", "T", "[", "]", "/"]:
        vocab[t] = len(vocab)
    # Every merged token made by the merge BPE's ranks reach it by, as SentencePiece vocabularies
    # are (eight's SentencePiece merge by score would otherwise take other paths).
    merges = [("▁", "a"), ("a", "b"), ("c", "d"), ("▁a", "b"), ("▁", "cd"), ("I", "N"), ("S", "T"),
              ("IN", "ST")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    while len(vocab) < IMAGE_ID:
        vocab[f"<filler_{len(vocab)}>"] = len(vocab)
    vocab["<image>"] = IMAGE_ID
    n = tokenizers.normalizers
    tok = tokenizers.Tokenizer(tokenizers.models.BPE(vocab=vocab, merges=merges, byte_fallback=True,
                                                     unk_token="<unk>", fuse_unk=True))
    tok.normalizer = n.Sequence([n.Prepend("▁"), n.Replace(" ", "▁")])
    tok.add_special_tokens(["<unk>", "<s>", "</s>", "<image>"])
    tok.post_processor = tokenizers.processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", 1)])
    d = tmp_path / "spm"
    d.mkdir()
    for f in ("config.json", "model.safetensors", "preprocessor_config.json"):
        (d / f).symlink_to(TINY / f)
    tok.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
         "legacy": True}))
    return d


def processor_ids(directory, image, prompt):
    """transformers' LlavaNextProcessor (PIL image processor, no torch) on the same inputs."""
    transformers = pytest.importorskip("transformers")
    from PIL import Image
    pp = json.loads((TINY / "preprocessor_config.json").read_text())
    ip = transformers.LlavaNextImageProcessorPil(
        **{k: v for k, v in pp.items() if k not in ("image_processor_type", "processor_class")})
    tok = transformers.PreTrainedTokenizerFast.from_pretrained(str(directory))
    proc = transformers.LlavaNextProcessor(image_processor=ip, tokenizer=tok, patch_size=14,
                                           vision_feature_select_strategy="default",
                                           image_token="<image>", num_additional_image_tokens=1)
    return proc(images=Image.open(image), text=prompt, return_tensors="np")["input_ids"][0].tolist()


def run_prompt(directory, image, prompt, n):
    r = eight("run", "-m", directory, "--image", image, "-p", prompt, "--temp", "0", "-n", n,
              "--json", "-t", "2")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return [IMAGE_ID if t == -1 else t for t in out["prompt_tokens"]], out["tokens"]


def test_run_from_directory_matches_processor(tmp_path):
    """The prompt is tokenized with the directory's tokenizer.json; the ids around the image are
    transformers' LlavaNextProcessor's (image token expanded to the image's feature count), for
    the fixture's byte-level BPE and for a Llama-2 / Mistral style SentencePiece tokenizer (the
    text after the image gets the space prefix, as the legacy normalizer gives it)."""
    need_cli()
    case = LOGITS["run"]
    image = DATA / case["image"]
    got, greedy = run_prompt(TINY, image, case["prompt"], len(case["greedy"]))
    assert greedy == case["greedy"]
    assert got == processor_ids(TINY, image, case["prompt"])
    spm = spm_directory(tmp_path)
    for prompt in ["[INST] ab<image>\ncd ab [/INST]", "<image>ab cd", "ab cd <image>"]:
        got, _ = run_prompt(spm, DATA / "img_wide.png", prompt, 1)
        assert got == processor_ids(spm, DATA / "img_wide.png", prompt), prompt


def test_chat_template_from_directory():
    """tokenizer_config.json's chat_template (with its BOS) renders the conversation."""
    need_cli()
    r = subprocess.run([CLI, "template", "-m", str(TINY), "--messages", "-"], capture_output=True,
                       text=True, timeout=60, input='[{"role": "user", "content": "hi"}]')
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip("\n") == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant"


def test_plan_counts_the_vision_encoder():
    need_cli()
    base = json.loads(eight("plan", DATA / "tiny-llm-f32.gguf", "--cpu", "--json").stdout)
    with_v = json.loads(eight("plan", DATA / "tiny-llm-f32.gguf", "--mmproj",
                              DATA / "tiny-mmproj-f32.gguf", "--cpu", "--json").stdout)
    v = with_v["vision"]
    assert v["device"] == "cpu" and v["weight_bytes"] > 0 and v["work_bytes"] > 0
    # 42 px tiles of 3 x 3 patches; the 84 x 84 pinpoint has the most: 4 tiles + the whole
    # image, 9 + 6 x (6 + 1) tokens (img_square's 51, newlines included).
    assert v["max_tiles"] == 5 and v["max_image_tokens"] == 9 + 6 * 7
    assert with_v["host_peak"] - base["host_peak"] >= v["weight_bytes"] + v["work_bytes"]
    # A context too small for one image is raised to hold it (and the KV cache grows with it).
    small = json.loads(eight("plan", DATA / "tiny-llm-f32.gguf", "--mmproj", TINY, "--cpu",
                             "--json").stdout)
    assert small["request"]["ctx"] >= v["max_image_tokens"]
    d = json.loads(eight("plan", TINY, "--cpu", "--json").stdout)
    assert d["vision"]["max_image_tokens"] == v["max_image_tokens"]
    assert d["hparams"]["n_embd"] == 64 and d["hparams"]["n_layer"] == 2
    assert d["weight_bytes"] == base["weight_bytes"]  # the same F32 text weights, in place
    r = subprocess.run([CLI, "plan", DATA / "tiny-llm-f32.gguf", "--mmproj", DATA / "nope.gguf",
                        "--json"], capture_output=True, text=True)
    assert r.returncode != 0 and "nope.gguf" in r.stderr


def test_bad_directories(tmp_path):
    need_cli()
    (tmp_path / "config.json").write_text('{"model_type": "llava_next", "text_config": {}}')
    r = subprocess.run([CLI, "run", "-m", str(tmp_path), "-p", "x", "--image",
                        str(DATA / "img_small.png")], capture_output=True, text=True)
    assert r.returncode != 0 and "vision_config" in r.stderr
    (tmp_path / "config.json").write_text('{"model_type": "mistral"}')  # no weights
    r = subprocess.run([CLI, "run", "-m", str(tmp_path), "-p", "x"], capture_output=True, text=True)
    assert r.returncode != 0 and "safetensors" in r.stderr.lower()
    (tmp_path / "model.safetensors").symlink_to(TINY / "model.safetensors")
    (tmp_path / "config.json").write_text('{"model_type": "llama", "hidden_size": -3}')
    r = subprocess.run([CLI, "plan", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode != 0 and "hidden_size" in r.stderr
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    r = subprocess.run([CLI, "run", "-m", str(tmp_path), "-p", "x"], capture_output=True, text=True)
    assert r.returncode != 0 and "directory" in r.stderr
    (tmp_path / "config.json").write_text("{not json")
    r = subprocess.run([CLI, "logits", "-m", str(tmp_path), "--tokens", "1", "-o",
                        str(tmp_path / "o.npy")], capture_output=True, text=True)
    assert r.returncode != 0 and "directory" in r.stderr


def test_serve_from_directory():
    """`eight serve -m DIR` (no --mmproj) sees images: the square image adds its 51 tokens."""
    need_cli()
    import base64
    import urllib.request

    from server_util import ServeProcess
    s = ServeProcess("-m", TINY, threads=2)

    def post(parts):
        body = {"messages": [{"role": "user", "content": parts}], "temperature": 0,
                "max_tokens": 2}
        req = urllib.request.Request(s.url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())["usage"]["prompt_tokens"]

    try:
        url = "data:image/png;base64," + base64.b64encode(
            (DATA / "img_square.png").read_bytes()).decode()
        text = {"type": "text", "text": "hi"}
        plain = post([text])
        assert post([{"type": "image_url", "image_url": {"url": url}}, text]) == plain + 51
    finally:
        s.stop()


def test_bench_image_encode_and_ttft():
    """`eight bench -m DIR --image` times the encode and the time to first token (medians)."""
    need_cli()
    r = eight("bench", "-m", TINY, "--image", DATA / "img_square.png", "-r", "2", "-t", "2",
              "--json")
    j = json.loads(r.stdout.strip().splitlines()[-1])
    assert j["image_tokens"] == 51 and j["tiles"] == 5 and j["threads"] == 2
    assert j["prompt_tokens"] > j["image_tokens"]
    assert 0 < j["encode_ms"] <= j["ttft_ms"] and 0 < j["prefill_ms"] <= j["ttft_ms"]
    r = subprocess.run([CLI, "bench", "-m", str(DATA / "tiny-llm-f32.gguf"), "--image",
                        str(DATA / "img_square.png")], capture_output=True, text=True)
    assert r.returncode != 0 and "--mmproj" in r.stderr


def test_text_only_from_directory():
    """Without --image a LLaVA-NeXT directory is a text LLM: run, chat (which may take /image
    later) and logits need no --mmproj and give the converted pair's greedy tokens."""
    need_cli()
    base = ["-p", "ab", "-n", "3", "--temp", "0", "-t", "2"]
    got = json.loads(eight("run", "-m", TINY, *base, "--json").stdout.strip().splitlines()[-1])
    assert len(got["tokens"]) == 3
    r = eight("chat", "-m", TINY, *base)
    assert r.returncode == 0
    script = f"/image {DATA / 'img_tall.png'}\nwhat\n"
    r = subprocess.run([CLI, "chat", "-m", str(TINY), "-n", "2", "--temp", "0", "-t", "2"],
                       input=script, capture_output=True, text=True, errors="replace", timeout=120)
    assert r.returncode == 0 and "attached to your next message: 45 tokens" in r.stderr, r.stderr
