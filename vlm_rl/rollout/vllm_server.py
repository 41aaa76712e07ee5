"""`vlm-rl vllm-serve`: a vLLM backend behind HTTP, and `RemoteVLLM`, the trainer's side of it.

Endpoints (JSON unless said otherwise):

- ``GET /health`` → ``{"model": path}``
- ``POST /generate`` ``{"requests": [encoded request...], "sampling": {...}}`` →
  ``{"outputs": [[[token ids, finish reason] × n] per request]}``
- ``POST /load_weights`` body: a safetensors file of checkpoint-named tensors → ``{"loaded": k}``

Requests are those of `vlm_rl.rollout.vllm_requests` with frames and images as base64 raw
bytes. One request is served at a time (the backend is not re-entrant). Errors come back as
``{"error": message}`` with status 400 (bad request) or 500 (the backend failed).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from vlm_rl.rollout.vllm_engine import VLLMBackend
from vlm_rl.rollout.vllm_requests import Completion, decode_request, encode_request
from vlm_rl.rollout.weight_sync import chunks


class VLLMServerError(RuntimeError):
    """The server answered with an error, or could not be reached."""


def make_server(backend: VLLMBackend, host: str, port: int, *, model: str) -> ThreadingHTTPServer:
    """An HTTP server for `backend` bound to ``host:port`` (port 0 picks a free one); call serve_forever."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/health":
                return self._reply(404, {"error": f"no endpoint GET {self.path}; try /health"})
            self._reply(200, {"model": model})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            try:
                if self.path == "/generate":
                    payload = json.loads(body)
                    requests = [decode_request(r) for r in payload["requests"]]
                    sampling = dict(payload["sampling"])
                    sampling["logit_bias"] = {int(k): v for k, v in sampling.get("logit_bias", {}).items()}
                elif self.path == "/load_weights":
                    tensors = load_safetensors(body)
                else:
                    return self._reply(404, {"error": f"no endpoint POST {self.path}; try /generate or /load_weights"})
            except (ValueError, KeyError, TypeError) as err:
                return self._reply(400, {"error": f"bad {self.path} request: {type(err).__name__}: {err}"})
            try:
                with lock:
                    if self.path == "/generate":
                        result: dict[str, Any] = {"outputs": backend.generate(requests, sampling)}
                    else:
                        result = {"loaded": backend.load_weights(tensors.items())}
            except Exception as err:  # the trainer on the other side gets the message, the server keeps serving
                return self._reply(500, {"error": f"{self.path} failed: {type(err).__name__}: {err}"})
            self._reply(200, result)

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return ThreadingHTTPServer((host, port), Handler)


class RemoteVLLM:
    """The backend interface over HTTP to a `vlm-rl vllm-serve` at `base_url`."""

    def __init__(self, base_url: str, *, timeout_s: float = 600.0, chunk_mb: int = 512) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.chunk_bytes = chunk_mb * 2**20
        self.model = self._call("GET", "/health", None)["model"]

    def generate(self, requests: list[dict[str, Any]], sampling: dict[str, Any]) -> list[list[Completion]]:
        body = json.dumps({"requests": [encode_request(r) for r in requests], "sampling": sampling}).encode()
        outputs = self._call("POST", "/generate", body)["outputs"]
        return [[(list(ids), str(finish)) for ids, finish in completions] for completions in outputs]

    def load_weights(self, named: Iterable[tuple[str, torch.Tensor]]) -> int:
        return sum(self._call("POST", "/load_weights", save_safetensors(group))["loaded"] for group in chunks(iter(named), self.chunk_bytes))

    def _call(self, method: str, path: str, body: bytes | None) -> dict[str, Any]:
        url = self.base_url + path
        request = urllib.request.Request(url, data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            try:
                message = json.loads(err.read()).get("error", err.reason)
            except ValueError:
                message = err.reason
            raise VLLMServerError(f"vLLM server {url}: HTTP {err.code}: {message}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise VLLMServerError(
                f"vLLM server {url} cannot be reached ({reason}); start it with `vlm-rl vllm-serve --model DIR` "
                "and set rollout.vllm.server_url"
            ) from None
