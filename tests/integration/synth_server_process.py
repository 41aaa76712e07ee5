"""A `python -m vlm_rl.synthesis` subprocess on a free loopback port, for the tests that need a real synthesis server."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOKEN = "synth-Token_for-tests"


class Server:
    """One `python -m vlm_rl.synthesis` process (the `vlm-rl synth-server` code without the rest of vlm-rl)."""

    def __init__(self, workdir: Path, *options: str, token_file: Path | None = None, port: int = 0) -> None:
        self.workdir = workdir
        self.stderr = workdir.parent / f"{workdir.name}.stderr"
        command = [sys.executable, "-m", "vlm_rl.synthesis", "--workdir", str(workdir), "--port", str(port), *options]
        if token_file is not None:
            command += ["--token-file", str(token_file)]
        with open(self.stderr, "ab") as err:
            self.proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=err)
        line = self._first_line(timeout_s=60)
        assert "serving http://127.0.0.1:" in line, f"no start line: {line!r}\n{self.stderr.read_text()[-3000:]}"
        self.banner = line
        self.url = line.split("serving ")[1].split(" ")[0]
        self.token = TOKEN if token_file is not None else None

    def _first_line(self, timeout_s: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        return self.proc.stdout.readline().decode() if ready else ""

    def call(self, method: str, path: str, body=None, *, token: str | None = "default", raw: bytes | None = None):
        """(status, JSON answer, headers) of one request; `token` None sends none, "default" the server's."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        token = self.token if token == "default" else token
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read()), response.headers
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read()), err.headers

    def metrics(self) -> dict:
        return self.call("GET", "/metrics")[1]

    def wait_done(self, count: int, timeout_s: float = 60) -> dict:
        deadline = time.monotonic() + timeout_s
        while (metrics := self.metrics())["done"] + metrics["failed"] < count:
            assert time.monotonic() < deadline, f"only {metrics} after {timeout_s} s"
            time.sleep(0.05)
        return metrics

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc.stdout.close()
