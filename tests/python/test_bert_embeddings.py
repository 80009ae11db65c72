"""`eight embed` on BERT GGUFs with random weights, as llama.cpp's converter lays them out
(tests/reference/make_random_bert.py), against the float64 numpy reference
(tests/reference/bert_ref.py: transformers' BertModel math, then mean or CLS pooling and L2
normalisation). Token ids come from Hugging Face's BertWordPieceTokenizer over the same vocabulary,
so the tokenizer is checked on the way.

Bounds (NMSE = |e - ref|² / |ref|² over all rows): F32 weights 1e-6 (the target; float32
arithmetic in the encoder); F16 and Q8_0 weights are compared with the reference run on the
dequantized weights the file holds, so only activation rounding is left: F16 ≤ 1e-6 (f32
activations; measured 2e-14 like F32), Q8_0 (measured 3e-5 to 7e-5; where
the CPU kernels round activations to 8 bits per block of 32 for the int8 dot products) ≤ 1e-3."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gguf")
tokenizers = pytest.importorskip("tokenizers")

ROOT = Path(os.environ.get("EIGHT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
CLI = os.environ.get("EIGHT_CLI", str(ROOT / "build" / "bin" / "eight"))
sys.path.insert(0, str(ROOT / "tests" / "reference"))
import bert_ref  # noqa: E402
import make_random_bert  # noqa: E402

TEXTS = ["The quick brown fox jumps over the lazy dog.",
         "Café crème, déjà vu!",
         "embeddings from gguf",
         "東京 and 서울",
         "a"]
BOUND = {"F32": 1e-6, "F16": 1e-6, "Q8_0": 1e-3}


def vocab():
    words = sorted({w for t in TEXTS for w, _ in tokenizers.pre_tokenizers.BertPreTokenizer()
                    .pre_tokenize_str(tokenizers.normalizers.BertNormalizer(lowercase=True)
                                      .normalize_str(t))})
    v = list(make_random_bert.SPECIALS)
    for w in words:
        for c in w:
            for t in (c, "##" + c):
                if t not in v:
                    v.append(t)
        if len(w) > 3 and w[:3] not in v:
            v.append(w[:3])
    return v


def make(tmp_path, qtype, pooling, seed=0, n_embd=64, n_head=4, n_layer=2, n_ff=128, n_ctx=64):
    v = vocab()
    (tmp_path / "vocab.txt").write_text("\n".join(v) + "\n", encoding="utf-8")
    rng = np.random.default_rng(seed)
    W = make_random_bert.random_weights(rng, len(v), n_embd, n_layer, n_ff, n_ctx)
    path = tmp_path / f"bert-{qtype}-{pooling}.gguf"
    stored = make_random_bert.write_model(str(path), v, W, n_head, pooling, qtype)
    return path, stored, n_head


def eight_embed(path, texts, tmp_path):
    out = tmp_path / "e.npy"
    args = [CLI, "embed", "-m", str(path), "-o", str(out), "-t", "2"]
    for t in texts:
        args += ["--text", t]
    r = subprocess.run(args, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return np.load(out)


@pytest.mark.parametrize("qtype,pooling", [("F32", 1), ("F32", 2), ("F16", 1), ("Q8_0", 2)])
def test_matches_float64_reference(tmp_path, qtype, pooling):
    path, W, n_head = make(tmp_path, qtype, pooling, seed=pooling)
    hf = tokenizers.BertWordPieceTokenizer(str(tmp_path / "vocab.txt"), lowercase=True)
    got = eight_embed(path, TEXTS, tmp_path)
    assert got.shape == (len(TEXTS), 64)
    want = np.stack([bert_ref.embed(W, hf.encode(t).ids, n_head, pooling) for t in TEXTS])
    nmse = float(((got - want) ** 2).sum() / (want ** 2).sum())
    assert nmse <= BOUND[qtype], f"{qtype} pooling {pooling}: NMSE {nmse:.3g}"
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # mean and CLS pooling give different vectors (the pooling key is read)
    if qtype == "F32" and pooling == 1:
        cls = np.stack([bert_ref.embed(W, hf.encode(t).ids, n_head, 2) for t in TEXTS])
        assert float(((got - cls) ** 2).sum() / (cls ** 2).sum()) > 1e-2


def test_json_and_errors(tmp_path):
    path, _, _ = make(tmp_path, "F32", 1)
    r = subprocess.run([CLI, "embed", "-m", str(path), "--text", "a", "--json"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    j = json.loads(r.stdout)
    assert j[0]["type"] == "text" and len(j[0]["embedding"]) == 64
    # too long for the 64 positions: a clear error, not a crash
    r = subprocess.run([CLI, "embed", "-m", str(path), "--text", "a " * 100],
                       capture_output=True, timeout=60)
    assert r.returncode != 0 and b"at most 64" in r.stderr
    r = subprocess.run([CLI, "embed", "-m", str(path), "--image", str(path)],
                       capture_output=True, timeout=60)
    assert r.returncode != 0 and b"text only" in r.stderr
    # a tensor missing from the file is named
    import gguf
    rd = gguf.GGUFReader(str(path))
    bad = tmp_path / "bad.gguf"
    w = gguf.GGUFWriter(str(bad), "bert")
    for k, f in rd.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        val = f.contents()
        vt = f.types[0]
        if vt == gguf.GGUFValueType.ARRAY:
            w.add_key_value(k, val, vt, sub_type=f.types[-1])
        else:
            w.add_key_value(k, val, vt)
    for t in rd.tensors:
        if t.name != "blk.1.ffn_down.weight":
            w.add_tensor(t.name, np.array(t.data).reshape([int(x) for x in reversed(t.shape)]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    r = subprocess.run([CLI, "embed", "-m", str(bad), "--text", "a"], capture_output=True, timeout=60)
    assert r.returncode != 0 and b"blk.1.ffn_down.weight" in r.stderr, r.stderr


def test_server_embeddings_openai(tmp_path):
    """/v1/embeddings through the official `openai` client: a BERT GGUF given as -m is served as
    an embedding model; strings, lists and token-id inputs; base64; errors are 400s naming the
    field."""
    openai = pytest.importorskip("openai")
    from server_util import ServeProcess
    path, W, n_head = make(tmp_path, "F32", 2, seed=7)
    hf = tokenizers.BertWordPieceTokenizer(str(tmp_path / "vocab.txt"), lowercase=True)
    srv = ServeProcess("-m", str(path))
    try:
        client = openai.OpenAI(base_url=srv.url + "/v1", api_key="none")
        r = client.embeddings.create(model=path.stem, input=TEXTS)
        got = np.array([d.embedding for d in r.data])
        want = np.stack([bert_ref.embed(W, hf.encode(t).ids, n_head, 2) for t in TEXTS])
        assert float(((got - want) ** 2).sum() / (want ** 2).sum()) <= 1e-6
        assert r.usage.prompt_tokens == sum(len(hf.encode(t).ids) for t in TEXTS)
        ids = hf.encode(TEXTS[0]).ids
        r2 = client.embeddings.create(model=path.stem, input=[ids])  # token ids as given
        assert np.allclose(r2.data[0].embedding, got[0], atol=1e-6)
        r3 = client.embeddings.create(model=path.stem, input=TEXTS[1], encoding_format="base64")
        import base64
        b64 = np.frombuffer(base64.b64decode(r3.data[0].embedding), dtype="<f4")
        assert np.allclose(b64, got[1], atol=1e-6)
        for bad, field in (({"input": [{"x": 1}]}, "input[0]"), ({"input": [[10 ** 6]]}, "input[0][0]"),
                           ({"input": "a " * 100}, "input"), ({"input": "a", "dimensions": 3}, "dimensions")):
            with pytest.raises(openai.BadRequestError) as e:
                client.embeddings.create(model=path.stem, **bad)
            assert e.value.body.get("param") == field, (bad, e.value.body)
        with pytest.raises(openai.NotFoundError):
            client.embeddings.create(model="other", input="a")
    finally:
        srv.stop()


@pytest.mark.parametrize("arch", ["llama", "qwen2", "phi3"])
def test_decoder_llm_last_token_embedding(tmp_path, arch):
    """Decoder LLMs embed as llama.cpp's LAST pooling: the final normed hidden state of the last
    token, L2-normalised; against tests/reference/llm_ref.py (float64) on random F32 weights."""
    import llm_ref
    import make_random_llm
    path = tmp_path / f"{arch}.gguf"
    make_random_llm.make_model(str(path), arch=arch, qtype="F32", seed=3)
    texts = ["the first text", "another, longer text to embed here"]
    got = eight_embed(path, texts, tmp_path)
    m = llm_ref.GgufModel(str(path))
    for t, g in zip(texts, got):
        r = subprocess.run([CLI, "tokenize", "-m", str(path), "--no-parse-special", t],
                           capture_output=True, timeout=60)
        ids = [int(x) for x in r.stdout.split()]
        h = llm_ref.forward(m, ids, hidden=True)[-1]
        want = h / np.linalg.norm(h)
        assert float(((g - want) ** 2).sum()) <= 1e-6, arch


def test_plan_and_inspect(tmp_path):
    """`eight plan` bills a BERT GGUF as an encoder (weights, one input's activations, kernel
    scratch; no KV cache or logits); `eight inspect` reads it."""
    path, _, _ = make(tmp_path, "F16", 1)
    r = subprocess.run([CLI, "plan", str(path), "--json", "--ctx", "16", "-t", "2"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    j = json.loads(r.stdout)
    import gguf
    tensor_bytes = sum(int(t.n_bytes) for t in gguf.GGUFReader(str(path)).tensors)
    assert j["architecture"] == "bert" and j["tokens"] == 16 and j["pooling"] == "mean"
    assert j["weight_bytes"] == tensor_bytes  # every vector is f32 already: nothing copied
    assert j["activation_bytes"] == 4 * (6 * 16 * 64 + 16 * 128 + 2 * 16 + 64)
    assert j["fits"] and j["host_peak_bytes"] >= j["weight_bytes"] + j["activation_bytes"]
    r = subprocess.run([CLI, "inspect", str(path)], capture_output=True, timeout=60)
    assert r.returncode == 0 and b"bert.pooling_type" in r.stdout


def test_special_token_text_parsed_like_hf(tmp_path):
    """"[SEP]" written in an input is the [SEP] token, as in HF's tokenizer and llama.cpp."""
    path, W, n_head = make(tmp_path, "F32", 1, seed=5)
    hf = tokenizers.BertWordPieceTokenizer(str(tmp_path / "vocab.txt"), lowercase=True)
    text = "a [SEP] fox"
    got = eight_embed(path, [text], tmp_path)[0]
    ids = hf.encode(text).ids
    assert ids.count(3) == 2  # [SEP] inside and at the end
    want = bert_ref.embed(W, ids, n_head, 1)
    assert float(((got - want) ** 2).sum()) <= 1e-6
