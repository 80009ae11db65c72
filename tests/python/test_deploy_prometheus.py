"""deploy/prometheus.yml and its rules: the files parse as Prometheus configuration, the scrape
job targets replicas' /metrics, and every eight_* series the rules or comments mention exists in
the exposition that a running replica serves (after one chat request, so counters are live).

YAML comes from PyYAML, which the test venv has as a hard requirement of transformers
(tools/requirements-test.txt).

Environment (set by CTest): EIGHT_CLI (the eight binary).
"""
import re

import requests
import yaml

from server_util import SOURCE, ServeProcess

DEPLOY = SOURCE / "deploy"
DEMO = str(SOURCE / "models" / "eight-demo.gguf")
# One exposition line: name, optional {labels}, value (text format 0.0.4).
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def mentioned_series():
    """eight_* names in the config's comments and the rules' expressions (recording rules'
    own names, eight:..., are Prometheus's, not the replica's)."""
    text = (DEPLOY / "prometheus.yml").read_text() + (DEPLOY / "prometheus-rules.yml").read_text()
    return set(re.findall(r"\beight_[a-z_]+\b", text))


def parse_exposition(text):
    """{name: [(labels, value)]} from the text format; fails on a malformed line."""
    series, types = {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not an exposition line: {line!r}"
        float(m.group(3))  # a number (NaN and +Inf parse too)
        series.setdefault(m.group(1), []).append((m.group(2) or "", float(m.group(3))))
    assert set(series) <= set(types), "every series has a # TYPE line"
    return series


def test_config_shape():
    conf = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert conf["rule_files"] == ["prometheus-rules.yml"]
    (job,) = conf["scrape_configs"]
    assert job["job_name"] == "eight" and job["metrics_path"] == "/metrics"
    targets = job["static_configs"][0]["targets"]
    assert len(targets) == 2 and all(re.fullmatch(r"[\w.-]+:\d+", t) for t in targets)
    rules = yaml.safe_load((DEPLOY / "prometheus-rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert ("record" in rule) != ("alert" in rule), rule
            assert rule["expr"].strip(), rule
            if "for" in rule:
                assert re.fullmatch(r"\d+[smh]", rule["for"]), rule


def test_mentioned_series_exist_on_a_replica():
    names = mentioned_series()
    assert {"eight_requests_total", "eight_queue_depth", "eight_kv_cache_usage_ratio"} <= names
    server = ServeProcess("-m", DEMO, threads=1)
    try:
        r = requests.post(server.url + "/v1/chat/completions", timeout=30,
                          json={"messages": [{"role": "user", "content": "Hi"}],
                                "max_tokens": 8})
        assert r.status_code == 200, r.text
        # The scrape the config describes, with the test replica's address as its target.
        job = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"][0]
        m = requests.get(server.url + job["metrics_path"], timeout=10)
        assert m.status_code == 200
        assert m.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        series = parse_exposition(m.text)
        missing = sorted(names - set(series))
        assert not missing, f"mentioned in deploy/ but not exported: {missing}"
        assert any('status="200"' in labels for labels, _ in series["eight_requests_total"])
        assert series["eight_completion_tokens_total"][0][1] > 0
    finally:
        server.proc.kill()  # no drain to test here: SIGTERM would wait out keep-alives
        server.stop()
