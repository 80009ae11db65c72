"""Structured output through the official `openai` client: response_format json_schema and
json_object on chat and completions (streamed too), validated with `jsonschema`, on the bundled
demo model and on random-weight models from tools/gen_llm; unsupported or malformed schemas get a
400 naming the field; --grammar / --json-schema on `eight run`."""
import gzip
import json
import os
import shutil
import subprocess

import jsonschema
import openai
import pytest

from server_util import CLI, SHARED, SOURCE, Server

PERSON = {  # a finite language: bounded strings, enums, bounded arrays and integers
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 12},
        "age": {"type": "integer", "minimum": 0, "maximum": 130},
        "role": {"enum": ["admin", "user", "guest"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 6}, "maxItems": 3},
        "active": {"type": "boolean"},
    },
    "required": ["name", "age", "role"],
    "additionalProperties": False,
}
EVENT = {  # $defs/$ref, anyOf, formats, pattern, number bounds, const, type arrays
    "$defs": {"point": {"type": "object", "properties": {
        "x": {"type": "number", "minimum": -10, "maximum": 10},
        "y": {"type": "number", "exclusiveMinimum": 0, "maximum": 1.5}},
        "required": ["x", "y"], "additionalProperties": False}},
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "day": {"type": "string", "format": "date"},
        "code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{2,4}$"},
        "kind": {"const": "event"},
        "where": {"anyOf": [{"$ref": "#/$defs/point"}, {"type": "null"}]},
        "note": {"type": ["string", "null"], "maxLength": 8},
        "path": {"type": "array", "items": {"$ref": "#/$defs/point"}, "minItems": 1, "maxItems": 2},
    },
    "required": ["id", "day", "code", "kind", "where", "path"],
    "additionalProperties": False,
}
OPEN = {  # an infinite language: open object, unbounded strings and arrays
    "type": "object",
    "properties": {"title": {"type": "string"}, "items": {"type": "array"}},
    "required": ["title"],
}
SCHEMAS = {"person": PERSON, "event": EVENT, "open": OPEN}


def validate(text: str, schema: dict):
    value = json.loads(text)
    checker = jsonschema.FormatChecker()
    jsonschema.Draft202012Validator(schema, format_checker=checker).validate(value)
    return value


def mid(client):
    return client.models.list().data[0].id


def fmt(name, schema):
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def gen_llm_model(tmp_dir, vocab=None):
    exe = os.path.join(os.environ.get("EIGHT_BINARY_DIR", str(SOURCE / "build")), "bin", "gen_llm")
    if not os.path.exists(exe):
        pytest.skip(f"SKIPPED: tools/gen_llm is not built ({exe})")
    out = os.path.join(tmp_dir, "random.gguf")
    cmd = [exe, "--out", out, "--arch", "qwen2", "--layers", "1", "--embd", "64", "--heads", "2",
           "--kv-heads", "1", "--ffn", "128", "--ctx", "1024", "--type", "F16", "--seed", "5"]
    if vocab:
        cmd += ["--vocab", vocab]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return out


@pytest.fixture(scope="module")
def demo():
    s = Server("--parallel", "3", "--ctx", "1024")
    yield s, openai.OpenAI(base_url=s.url + "/v1", api_key="x", max_retries=0, timeout=300)
    s.stop()


@pytest.fixture(scope="module", params=["byte-vocab", "qwen2-vocab"])
def random_model(request, tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("grammar"))
    vocab = None
    if request.param == "qwen2-vocab":
        gz = SHARED / "golden" / "tokenizer" / "ggml-vocab-qwen2.gguf.gz"
        if not gz.exists():
            pytest.skip("SKIPPED: ../shared/golden/tokenizer/ggml-vocab-qwen2.gguf.gz is absent")
        vocab = os.path.join(tmp, "qwen2-vocab.gguf")
        with gzip.open(gz) as src, open(vocab, "wb") as dst:
            shutil.copyfileobj(src, dst)
    s = Server("--parallel", "4", "--ctx", "1024", model=gen_llm_model(tmp, vocab))
    yield s, openai.OpenAI(base_url=s.url + "/v1", api_key="x", max_retries=0, timeout=300), \
        request.param
    s.stop()


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_demo_chat_json_schema_validates(demo, name):
    _, client = demo
    for seed in range(3):
        r = client.chat.completions.create(
            model=mid(client), messages=[{"role": "user", "content": "Describe a person as JSON."}],
            response_format=fmt(name, SCHEMAS[name]), max_tokens=300, temperature=1.0, seed=seed)
        validate(r.choices[0].message.content, SCHEMAS[name])


def test_demo_streamed_json_schema_validates(demo):
    _, client = demo
    chunks = client.chat.completions.create(
        model=mid(client), messages=[{"role": "user", "content": "An event, please."}],
        response_format=fmt("event", EVENT), max_tokens=300, temperature=0.9, seed=11, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    validate(text, EVENT)


def test_demo_pydantic_parse(demo):
    """The openai client's own structured-output helper: a pydantic model's strict schema."""
    from typing import Literal, Optional

    from pydantic import BaseModel

    class Addr(BaseModel):
        city: str
        zip: Optional[str]

    class User(BaseModel):
        name: str
        age: int
        kind: Literal["a", "b"]
        addr: Addr
        friends: list[str]

    _, client = demo
    r = client.beta.chat.completions.parse(
        model=mid(client), messages=[{"role": "user", "content": "A user."}], response_format=User,
        max_tokens=200, seed=5)
    assert isinstance(r.choices[0].message.parsed, User)


def test_demo_json_object(demo):
    _, client = demo
    r = client.chat.completions.create(
        model=mid(client), messages=[{"role": "user", "content": "Hi"}], max_tokens=120, seed=3,
        response_format={"type": "json_object"})
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_random_model_always_validates(random_model):
    """Random weights pick tokens with no sense at all: the grammar alone makes the output valid,
    including finishing open-ended schemas within max_tokens, on concurrent requests."""
    _, client, vocab = random_model
    import concurrent.futures as cf

    def one(args):
        name, seed, stream = args
        kw = dict(model=mid(client), prompt="x", max_tokens=160, temperature=1.5, seed=seed,
                  extra_body={"response_format": fmt(name, SCHEMAS[name])})
        if stream:
            text = "".join(c.choices[0].text for c in client.completions.create(stream=True, **kw))
        else:
            text = client.completions.create(**kw).choices[0].text
        return name, text

    # The 151k vocabulary costs more per token: fewer requests there (one streamed, one not).
    seeds = range(4 if vocab == "byte-vocab" else 2)
    jobs = [(n, seed, seed % 2 == 1) for n in SCHEMAS for seed in seeds]
    with cf.ThreadPoolExecutor(4) as ex:
        for name, text in ex.map(one, jobs):
            validate(text, SCHEMAS[name])


def test_random_model_tight_budget_still_closes(random_model):
    _, client, _ = random_model
    for seed in range(3):
        r = client.completions.create(model=mid(client), prompt="x", max_tokens=24,
                                      extra_body={"response_format": fmt("open", OPEN)},
                                      temperature=1.5, seed=seed)
        assert r.usage.completion_tokens <= 24
        validate(r.choices[0].text, OPEN)


@pytest.mark.parametrize("response_format,field,needle", [
    (fmt("s", {"type": "array", "uniqueItems": True}), "response_format.json_schema.schema",
     "'uniqueItems'"),
    (fmt("s", {"type": "string", "format": "email"}), "response_format.json_schema.schema",
     "'format' 'email'"),
    (fmt("s", {"$ref": "#/$defs/nope"}), "response_format.json_schema.schema", "points nowhere"),
    (fmt("s", {"type": "object", "properties": {"a": {"not": {}}}}),
     "response_format.json_schema.schema", "#/properties/a: 'not'"),
    (fmt("s", {"type": "string", "pattern": "(?<=a)b"}), "response_format.json_schema.schema",
     "lookaround"),
    ({"type": "xml"}, "response_format.type", "unknown response_format type"),
    ({"type": "json_schema"}, "response_format.json_schema", "must be an object"),
    ("json", "response_format", "must be an object"),
])
def test_unsupported_or_malformed_schema_is_400(demo, response_format, field, needle):
    _, client = demo
    for call in (lambda: client.chat.completions.create(
                     model=mid(client), messages=[{"role": "user", "content": "x"}], max_tokens=4,
                     response_format=response_format),
                 lambda: client.completions.create(
                     model=mid(client), prompt="x", max_tokens=4,
                     extra_body={"response_format": response_format})):
        with pytest.raises(openai.BadRequestError) as e:
            call()
        err = e.value.body
        assert err["param"] == field, err
        assert needle in err["message"], err


def test_cli_run_json_schema_and_grammar(tmp_path):
    model = str(sorted((SOURCE / "models").glob("*.gguf"))[0])
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps(PERSON))
    r = subprocess.run([CLI, "run", "-m", model, "-p", "Hello", "-n", "200", "--seed", "4",
                        "--json-schema", str(schema), "--json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    validate(json.loads(r.stdout.splitlines()[-1])["text"], PERSON)
    g = tmp_path / "g.gbnf"
    g.write_text('root ::= "yes" | "no" | num\nnum ::= [1-9] [0-9]{0,2}\n')
    r = subprocess.run([CLI, "run", "-m", model, "-p", "Hello", "-n", "20", "--seed", "1",
                        "--grammar", str(g), "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    text = json.loads(r.stdout.splitlines()[-1])["text"]
    assert text in ("yes", "no") or (text.isdigit() and 1 <= int(text) <= 999), text
    g.write_text('root ::= "a"\nbad ::= [a-\n')
    r = subprocess.run([CLI, "run", "-m", model, "-p", "x", "--grammar", str(g)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "line 2, column 9: unterminated character class" in r.stderr, \
        r.stderr
    r = subprocess.run([CLI, "chat", "-m", model, "-p", "A person, please.", "-n", "200",
                        "--seed", "2", "--json-schema", str(schema)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    validate(r.stdout.strip(), PERSON)
    for cmd in ("run", "chat"):
        h = subprocess.run([CLI, cmd, "--help"], capture_output=True, text=True).stdout
        assert "--grammar" in h and "--json-schema" in h
