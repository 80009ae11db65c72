"""Starts `eight serve` on a free loopback port for a test and stops it afterwards."""
import os
import pathlib
import re
import subprocess
import threading
import time

import pytest

SOURCE = pathlib.Path(os.environ.get("EIGHT_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
CLI = os.environ.get("EIGHT_CLI", str(SOURCE / "build" / "bin" / "eight"))
SHARED = pathlib.Path(os.environ.get("EIGHT_SHARED_DIR", SOURCE.parent / "shared"))


def pick_model() -> str:
    """The bundled demo model, else a golden model from ../shared; skips loudly when neither."""
    demo = sorted((SOURCE / "models").glob("*.gguf"))
    if demo:
        return str(demo[0])
    golden = SHARED / "golden" / "llm" / "llama-q8_0-tied.gguf"
    if golden.exists():
        return str(golden)
    pytest.skip("SKIPPED: no bundled model in models/ and no ../shared golden model")


class ServeProcess:
    """`eight serve ARGS... --port 0` with its stderr kept in `log`; `url` once it listens."""

    def __init__(self, *args: str, threads: int = 1):
        cmd = [CLI, "serve", "--port", "0", "-t", str(threads), *map(str, args)]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        self.port = None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            m = re.search(r"on http://[\d.]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("eight serve did not start:\n" + "".join(self.log))
        # Keep draining stderr so the server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Server(ServeProcess):
    """`eight serve -m MODEL` (the bundled or a golden LLM) plus any extra arguments."""

    def __init__(self, *args: str, model: str | None = None):
        self.model = model or pick_model()
        super().__init__("-m", self.model, *args, threads=2)

    def rss_bytes(self) -> int:
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0
