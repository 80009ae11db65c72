"""Tool calling through the official `openai` client against `eight serve`: forced calls
(tool_choice required / a named function) parse and their arguments validate against the
function's schema with `jsonschema`; streamed tool-call deltas reassemble into the non-streamed
message; tool results round-trip into the chat template exactly as Hugging Face renders them;
malformed tools are a 400 naming the field.

Models: random-weight GGUFs from tools/gen_llm with the seed families' real vocabularies and chat
templates (Qwen2.5 → Hermes <tool_call>, Llama 3.1 → JSON "parameters", Mistral Nemo →
[TOOL_CALLS]), and the bundled demo model, whose template ignores tools (generic format, tools
described in a system message)."""
import gzip
import json
import os
import subprocess
from pathlib import Path

import jsonschema
import openai
import pytest

import test_templates as tt
from server_util import CLI, SHARED, SOURCE, Server, pick_model

TEMPLATES = SOURCE / "tests" / "data" / "templates"
VOCABS = SHARED / "golden" / "tokenizer"
# family -> (vocabulary, architecture, template)
FAMILIES = {
    "hermes": ("qwen2", "qwen2", "qwen2.5-instruct"),
    "llama3": ("llama-bpe", "llama", "llama3.1-8b-instruct"),
    "mistral": ("llama-spm", "llama", "mistral-nemo-instruct-2407"),
}

WEATHER = {"type": "object",
           "properties": {"city": {"type": "string", "minLength": 1, "maxLength": 12},
                          "unit": {"enum": ["celsius", "fahrenheit"]},
                          "days": {"type": "integer", "minimum": 1, "maximum": 7}},
           "required": ["city", "unit"], "additionalProperties": False}
SEARCH = {"type": "object",
          "properties": {"query": {"type": "string", "maxLength": 16},
                         "safe": {"type": "boolean"}},
          "required": ["query", "safe"], "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather now.",
                                           "parameters": WEATHER}},
         {"type": "function", "function": {"name": "search", "description": "Web search.",
                                           "parameters": SEARCH}}]
# The vocabularies' BOS and EOS texts (tokenizer.ggml.bos/eos_token_id).
BOS_EOS = {"qwen2": ("<|endoftext|>", "<|im_end|>"),
           "llama-bpe": ("<|begin_of_text|>", "<|end_of_text|>"), "llama-spm": ("<s>", "</s>")}
# The demo model has a 256-token context: one small tool.
DEFINE = {"type": "object", "properties": {"word": {"type": "string", "maxLength": 8}},
          "required": ["word"], "additionalProperties": False}
DEMO_TOOLS = [{"type": "function", "function": {"name": "define", "parameters": DEFINE}}]
SCHEMAS = {"get_weather": WEATHER, "search": SEARCH, "define": DEFINE}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def gen_llm_exe():
    b = os.environ.get("EIGHT_BINARY_DIR", str(SOURCE / "build"))
    exe = Path(b) / "bin" / "gen_llm"
    if not exe.exists():
        pytest.skip(f"SKIPPED: tools/gen_llm is not built ({exe})")
    return exe


def family_model(family, tmp_path_factory):
    vocab, arch, template = FAMILIES[family]
    src = VOCABS / f"ggml-vocab-{vocab}.gguf.gz"
    if not src.exists():
        pytest.skip(f"SKIPPED LOUDLY: {src} is absent; the {family} tool-call tests did not run")
    d = tmp_path_factory.mktemp(family)
    (d / "vocab.gguf").write_bytes(gzip.decompress(src.read_bytes()))
    out = d / f"{template}.gguf"
    r = subprocess.run([str(gen_llm_exe()), "--arch", arch, "--layers", "1", "--embd", "64",
                        "--heads", "2", "--kv-heads", "1", "--ffn", "128", "--ctx", "4096",
                        "--vocab", str(d / "vocab.gguf"), "--chat-template",
                        str(TEMPLATES / f"{template}.jinja"), "--tied", "--seed", "5",
                        "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module", params=["hermes", "llama3", "mistral", "demo"])
def served(request, tmp_path_factory):
    """(family, model path, openai client) for one model behind `eight serve`."""
    family = request.param
    model = pick_model() if family == "demo" else family_model(family, tmp_path_factory)
    ctx = "256" if family == "demo" else "2048"
    s = Server("--parallel", "1", "--ctx", ctx, model=str(model))
    client = openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0, timeout=300)
    yield family, model, client
    s.stop()


def tools_of(family):
    return DEMO_TOOLS if family == "demo" else TOOLS


def model_id(client):
    return client.models.list().data[0].id


def chat(client, **kw):
    return client.chat.completions.create(model=model_id(client), **kw)


def named(name):
    return {"type": "function", "function": {"name": name}}


def check_call(call, names):
    assert call.type == "function" and len(call.id) == 9 and call.id.isalnum()
    assert call.function.name in names
    args = json.loads(call.function.arguments)
    jsonschema.validate(args, SCHEMAS[call.function.name])
    return call.function.name, args


@pytest.mark.parametrize("choice", ["required", "first", "last"])
def test_forced_call_parses_and_validates(served, choice):
    family, _, client = served
    tools = tools_of(family)
    names = [t["function"]["name"] for t in tools]
    tool_choice = "required"
    if choice != "required":
        names = names[:1] if choice == "first" else names[-1:]
        tool_choice = named(names[0])
    for seed in (1, 2):
        r = chat(client, messages=ASK, tools=tools, tool_choice=tool_choice, seed=seed,
                 max_tokens=64 if family == "demo" else 120)
        c = r.choices[0]
        assert c.finish_reason == "tool_calls", (family, c)
        assert c.message.content is None
        assert len(c.message.tool_calls) == 1
        check_call(c.message.tool_calls[0], names)


def reassemble(stream):
    content, calls, finish = "", [], None
    for chunk in stream:
        if not chunk.choices:
            continue
        ch = chunk.choices[0]
        finish = ch.finish_reason or finish
        d = ch.delta
        content += d.content or ""
        for tc in d.tool_calls or []:
            if tc.index == len(calls):
                assert tc.id and tc.type == "function" and tc.function.name
                calls.append({"name": tc.function.name, "arguments": ""})
            calls[tc.index]["arguments"] += tc.function.arguments or ""
    return content, calls, finish


@pytest.mark.parametrize("choice", ["auto", "required"])
def test_stream_reassembles_to_the_non_streamed_message(served, choice):
    family, _, client = served
    kw = dict(messages=ASK, tools=tools_of(family), tool_choice=choice, seed=11, max_tokens=60)
    chat(client, **kw)  # the same cached-prefix path for both requests below
    full = chat(client, **kw).choices[0]
    content, calls, finish = reassemble(chat(client, stream=True, **kw))
    assert finish == full.finish_reason
    assert content == (full.message.content or "")
    want = [{"name": t.function.name, "arguments": t.function.arguments}
            for t in full.message.tool_calls or []]
    assert calls == want, family
    if choice == "required":
        assert len(calls) == 1 and finish == "tool_calls"


def test_tool_choice_none_renders_no_tools(served):
    family, _, client = served
    tools = tools_of(family)
    plain = chat(client, messages=ASK, max_tokens=4, seed=1)
    none = chat(client, messages=ASK, tools=tools, tool_choice="none", max_tokens=4, seed=1)
    with_tools = chat(client, messages=ASK, tools=tools, max_tokens=4, seed=1)
    assert none.usage.prompt_tokens == plain.usage.prompt_tokens
    assert with_tools.usage.prompt_tokens > plain.usage.prompt_tokens
    assert none.choices[0].message.tool_calls is None


def conversation(result):
    return ASK + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "abcDEF123", "type": "function",
             "function": {"name": "get_weather",
                          "arguments": "{\"city\": \"Paris\", \"unit\": \"celsius\"}"}}]},
        {"role": "tool", "tool_call_id": "abcDEF123", "content": result}]


def hf_prompt_tokens(family, model, messages):
    """Token count of the prompt Hugging Face's apply_chat_template renders (jinja2), with tool
    arguments as objects (HF's convention), tokenized by `eight tokenize` like the server does."""
    vocab, _, template = FAMILIES[family]
    bos, eos = BOS_EOS[vocab]
    msgs = json.loads(json.dumps(messages))
    for m in msgs:
        for c in m.get("tool_calls") or []:
            c["function"]["arguments"] = json.loads(c["function"]["arguments"])
        if m.get("content") is None:
            m["content"] = ""
    src = (TEMPLATES / f"{template}.jinja").read_text(encoding="utf-8")
    text = tt.ENV.from_string(src).render(messages=msgs, tools=TOOLS, add_generation_prompt=True,
                                          bos_token=bos, eos_token=eos)
    args = [CLI, "tokenize", "-m", str(model), "--special", "--json", "-"]
    if text.startswith(bos):
        args.insert(2, "--no-bos")
    out = subprocess.run(args, input=text.encode(), capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return len(json.loads(out.stdout)["ids"]), text


def test_tool_results_round_trip_into_the_template(served):
    family, model, client = served
    if family == "demo":
        pytest.skip("the demo model's template has no tool messages (covered by the families)")
    result = "{\"temperature\": 21.5, \"sky\": \"clear\"}"
    msgs = conversation(result)
    r = chat(client, messages=msgs, tools=TOOLS, max_tokens=1, seed=1)
    n, text = hf_prompt_tokens(family, model, msgs)
    assert "21.5" in text and "Paris" in text
    assert r.usage.prompt_tokens == n, (family, text)
    # The result is really in the prompt: a longer one costs more tokens.
    longer = chat(client, messages=conversation(result + " " + "very " * 20), tools=TOOLS,
                  max_tokens=1, seed=1)
    assert longer.usage.prompt_tokens > r.usage.prompt_tokens


@pytest.mark.parametrize("body,param", [
    ({"tools": "get_weather"}, "tools"),
    ({"tools": [{"type": "function"}]}, "tools[0].function"),
    ({"tools": [{"type": "function", "function": {"name": "a b"}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]},
     "tools[0].function.parameters"),
    ({"tools": TOOLS, "tool_choice": "always"}, "tool_choice"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": TOOLS, "tool_choice": named("nope")}, "tool_choice.function.name"),
    ({"tools": [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "not": {}}}}], "tool_choice": "required"},
     "tools[0].function.parameters"),
    ({"tools": TOOLS, "tool_choice": "required", "response_format": {"type": "json_object"}},
     "response_format"),
])
def test_malformed_tools_are_400_naming_the_field(served, body, param):
    _, _, client = served
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=model_id(client), messages=ASK, max_tokens=1,
                                       **{k: v for k, v in body.items() if k != "tools"},
                                       tools=body.get("tools", openai.NOT_GIVEN))
    assert e.value.body["param"] == param, e.value.body
