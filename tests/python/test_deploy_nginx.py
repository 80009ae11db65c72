"""Past one machine: two `eight serve` replicas behind Debian's nginx running deploy/nginx.conf
(ports and paths substituted, nothing else), 50 streamed chat requests through it, one replica
SIGKILLed in the middle. Every request started after the kill must complete, and no stream may be
cut silently: each ends with [DONE], with an SSE error event, or with a transport error the client
sees (nginx cannot finish a chunked response whose replica died). Also SIGTERM on a replica: it
stops accepting, finishes streams within --drain-timeout and ends the rest with an error event.

nginx runs in the foreground as a non-root user (nobody when the test runs as root). Without
nginx the nginx test skips loudly; scripts/deps.sh --test installs it in CI.

Environment (set by CTest): EIGHT_CLI (the eight binary).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from server_util import SOURCE, ServeProcess

DEMO = str(SOURCE / "models" / "eight-demo.gguf")
N_REQUESTS = 50
KILL_AFTER = 20  # requests submitted before replica A is killed
CONCURRENCY = 4
# ~200 tokens of grammar-held output: a stream long enough (~0.1-0.3 s) to be cut in the middle.
LONG_ANSWER = {"type": "json_schema",
               "json_schema": {"name": "numbers",
                               "schema": {"type": "array", "items": {"type": "integer"},
                                          "minItems": 60}}}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_nginx():
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.path.exists(p)), None)


def sub_once(pattern, repl, text):
    out, n = re.subn(pattern, repl, text, flags=re.M)
    assert n == 1, f"deploy/nginx.conf: expected one match of {pattern!r}, found {n}"
    return out


def nginx_config(port, replicas, tmp):
    """deploy/nginx.conf with the test's ports and a private prefix: nothing else changes."""
    conf = (SOURCE / "deploy" / "nginx.conf").read_text()
    conf = sub_once(r"^worker_processes auto;", "worker_processes 1;", conf)
    conf = sub_once(r"^(\s*)listen 8080;", rf"\1listen 127.0.0.1:{port};", conf)
    for default, actual in zip((8081, 8082), replicas):
        conf = sub_once(rf"server 127\.0\.0\.1:{default} ", f"server 127.0.0.1:{actual} ", conf)
    conf = sub_once(r"access_log /var/log/nginx/eight\.access\.log eight;",
                    f"access_log {tmp}/access.log eight;", conf)
    temps = "".join(f"    {name}_temp_path {tmp}/{name};\n"
                    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return sub_once(r"^http \{\n", "http {\n" + temps, conf)


def as_nobody():
    os.setgid(65534)
    os.setuid(65534)


class Nginx:
    def __init__(self, binary, replicas):
        self.tmp = tempfile.mkdtemp(prefix="eight-nginx-")
        os.chmod(self.tmp, 0o777)
        self.port = free_port()
        conf = os.path.join(self.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_config(self.port, replicas, self.tmp))
        os.chmod(conf, 0o644)
        cmd = [binary, "-p", self.tmp, "-c", conf, "-e", "stderr",
               "-g", f"daemon off; pid {self.tmp}/nginx.pid;"]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=as_nobody if os.geteuid() == 0 else None)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx did not start:\n" + self.proc.stderr.read())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not listen within 10 s")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful shutdown of master and workers
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def stream_chat(url, content, timeout=30):
    """One streamed chat request. Returns (outcome, detail): outcome is 'done' ([DONE] seen),
    'error_event' (an SSE {"error": ...} event), 'transport' (connection reset or a chunked body
    cut short: the client sees an exception), 'http_<status>', or 'silent' (the stream ended with
    neither [DONE] nor an error: the failure this deployment must never produce)."""
    body = {"messages": [{"role": "user", "content": content}], "stream": True,
            "max_tokens": 200, "response_format": LONG_ANSWER}
    try:
        with requests.post(url + "/v1/chat/completions", json=body, stream=True,
                           timeout=timeout) as r:
            if r.status_code != 200:
                return f"http_{r.status_code}", r.text[:300]
            tokens = 0
            for line in r.iter_lines():
                if not line.startswith(b"data: "):
                    continue
                data = line[6:]
                if data == b"[DONE]":
                    return "done", tokens
                event = json.loads(data)
                if "error" in event:
                    return "error_event", event["error"]
                tokens += 1
            return "silent", tokens
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
        return "transport", repr(e)[:300]


def replica():
    if not os.path.exists(DEMO):
        pytest.skip(f"SKIPPED: the bundled demo model {DEMO} is missing")
    return ServeProcess("-m", DEMO, "--parallel", "2", threads=1)


def test_two_replicas_behind_nginx_survive_a_kill():
    binary = find_nginx()
    if binary is None:
        pytest.skip("SKIPPED: nginx is not installed (apt-get install nginx); deploy/nginx.conf "
                    "is NOT tested")
    a, b = replica(), replica()
    lb = None
    try:
        lb = Nginx(binary, [a.port, b.port])
        assert requests.get(lb.url + "/health", timeout=10).json()["status"] == "ok"
        results = [None] * N_REQUESTS
        started = [0.0] * N_REQUESTS
        kill_time = [None]
        gate = threading.Semaphore(CONCURRENCY)

        def one(i):
            try:
                started[i] = time.monotonic()
                results[i] = stream_chat(lb.url, f"Request {i}: what is a cat?")
            finally:
                gate.release()

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            for i in range(N_REQUESTS):
                if i == KILL_AFTER:
                    time.sleep(0.05)  # the requests in flight are mid-stream now
                    a.proc.kill()  # SIGKILL: no drain, no error event, sockets reset
                    a.proc.wait()
                    kill_time[0] = time.monotonic()
                gate.acquire()
                pool.submit(one, i)
        outcomes = [r[0] for r in results]
        print("outcomes:", {o: outcomes.count(o) for o in set(outcomes)})
        silent = [(i, r) for i, r in enumerate(results) if r[0] == "silent"]
        assert not silent, f"streams cut without [DONE] or an error: {silent}"
        after = [(i, results[i]) for i in range(N_REQUESTS) if started[i] > kill_time[0]]
        assert len(after) >= N_REQUESTS - KILL_AFTER - CONCURRENCY
        failed = [(i, r) for i, r in after if r[0] != "done"]
        assert not failed, f"requests started after the kill failed: {failed}"
        before = [r[0] for r in results[:KILL_AFTER]]
        assert all(o in ("done", "error_event", "transport") for o in before), before
        # The survivor still answers, through nginx, the killed one is seen as down.
        assert requests.get(lb.url + "/health", timeout=10).status_code == 200
        with open(os.path.join(lb.tmp, "access.log")) as f:
            log = f.read()
        assert f"127.0.0.1:{b.port}" in log
    finally:
        if lb:
            lb.stop()
        for r in (a, b):
            r.proc.kill()  # the drain has its own test; SIGTERM would wait out keep-alives
            r.stop()


def stream_then_signal(server, after_events=3):
    """A long streamed answer from `server`, SIGTERM sent once `after_events` events arrived;
    the events (raw data fields) in order."""
    body = {"messages": [{"role": "user", "content": "Hi"}], "stream": True, "max_tokens": 200,
            "response_format": LONG_ANSWER}
    events = []
    with requests.post(server.url + "/v1/chat/completions", json=body, stream=True,
                       timeout=30) as r:
        assert r.status_code == 200, r.text
        for line in r.iter_lines():
            if line.startswith(b"data: "):
                events.append(line[6:])
                if len(events) == after_events:
                    server.proc.send_signal(signal.SIGTERM)
    assert len(events) > after_events, "the stream ended before the signal: nothing tested"
    return events


def test_sigterm_drains_then_cuts_with_an_error_event():
    # The default grace period (10 s): the stream in flight finishes, then the process exits.
    server = replica()
    try:
        events = stream_then_signal(server)
        assert events[-1] == b"[DONE]", events[-2:]
        assert server.proc.wait(timeout=20) == 0
    finally:
        server.stop()

    # --drain-timeout 0: the stream is cut at once, and says so before the connection closes.
    server = ServeProcess("-m", DEMO, "--drain-timeout", "0", threads=1)
    try:
        events = stream_then_signal(server)
        last = json.loads(events[-1])
        assert last["error"]["code"] == "server_shutting_down", last
        assert server.proc.wait(timeout=20) == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(server.url + "/health", timeout=5)
    finally:
        server.stop()


def test_health_is_503_while_loading_then_200():
    """The listener is up from the first line: /health answers 503 {"status":"loading"} until
    the model is loaded, then 200. The demo model loads in milliseconds, so every answer seen
    must be one of the two, in that order, and never a refused connection."""
    proc = subprocess.Popen([os.environ.get("EIGHT_CLI", str(SOURCE / "build/bin/eight")), "serve",
                             "-m", DEMO, "--port", "0", "-t", "1"],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        m = re.search(r"loading; [\d.]+:(\d+) answers 503", line)
        assert m, line
        url = f"http://127.0.0.1:{m.group(1)}/health"
        seen, refused = [], []
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                r = requests.get(url, timeout=5)
            except requests.ConnectionError:
                # The real server takes the port over when the placeholder closes: a connection
                # in that gap (milliseconds) is refused (docs/deploy.md).
                seen.append((0, "refused"))
                refused.append(time.monotonic())
                continue
            seen.append((r.status_code, r.json()["status"]))
            if r.status_code == 200:
                break
            assert r.status_code == 503 and r.headers.get("Retry-After") == "1"
        assert seen[-1] == (200, "ok"), seen
        assert all(s in ((503, "loading"), (0, "refused")) for s in seen[:-1]), seen
        assert not refused or refused[-1] - refused[0] < 0.5, (len(refused), seen[-3:])
    finally:
        proc.kill()  # the drain is tested above; this saves its keep-alive wait
        proc.wait(timeout=20)
