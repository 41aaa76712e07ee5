"""`vlm-rl vllm-serve`: a vLLM backend behind HTTP, and `RemoteVLLM`, the trainer's side of it.

Endpoints (JSON unless said otherwise):

- ``GET /health`` → ``{"model": path, "max_body_bytes": cap}``
- ``POST /generate`` ``{"requests": [encoded request...], "sampling": {...}}`` →
  ``{"outputs": [[[token ids, finish reason] × n] per request]}``
- ``POST /load_weights`` body: a safetensors file of checkpoint-named tensors → ``{"loaded": k}``

Requests are those of `vlm_rl.rollout.vllm_requests` with frames and images as base64 raw
bytes. Errors come back as ``{"error": message}``: 400 (bad request), 500 (the backend failed).

Protection (docs/servers.md): with a token (`read_token`), every request must carry
``Authorization: Bearer TOKEN`` or gets 401 before its body is read. A body over the cap gets 413
unread; a missing, malformed or conflicting Content-Length gets 411 or 400. Each connection has
its own thread and a socket timeout, so a stalled client holds only itself; the backend serves one
request at a time (it is not re-entrant).
"""

from __future__ import annotations

import hmac
import json
import re
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from vlm_rl import network
from vlm_rl.config import VLLMConfig
from vlm_rl.network import is_loopback
from vlm_rl.rollout.vllm_engine import VLLMBackend
from vlm_rl.rollout.vllm_requests import Completion, decode_request, encode_request
from vlm_rl.rollout.weight_sync import chunks

TOKEN_VARIABLE = "VLM_RL_SERVER_TOKEN"
"""The environment variable holding the token when no token file is named."""

BODY_HEADROOM_MB = 1536
"""Added to sync_chunk_mb for the default body cap: a tensor bigger than a piece travels alone."""

IO_TIMEOUT_S = 60.0
"""Seconds one socket read or write may wait before the server drops that connection."""

_BYTE_COUNT = re.compile(r"[0-9]{1,19}")


class VLLMServerError(RuntimeError):
    """The server answered with an error, or could not be reached."""


def read_token(token_file: str | Path | None) -> str | None:
    """The token in `token_file`, else ``$VLM_RL_SERVER_TOKEN``, else None (`vlm_rl.network.read_token`)."""
    return network.read_token(token_file, TOKEN_VARIABLE)


def body_cap_bytes(cfg: VLLMConfig) -> int:
    """The largest request body the server reads: rollout.vllm.max_body_mb, else sync_chunk_mb + headroom."""
    mb = cfg.max_body_mb if cfg.max_body_mb is not None else cfg.sync_chunk_mb + BODY_HEADROOM_MB
    return mb * 2**20


def make_server(
    backend: VLLMBackend,
    host: str,
    port: int,
    *,
    model: str,
    token: str | None = None,
    max_body_bytes: int | None = None,
    io_timeout_s: float = IO_TIMEOUT_S,
) -> ThreadingHTTPServer:
    """An HTTP server for `backend` bound to ``host:port`` (port 0 picks a free one); call serve_forever.

    `token`: what clients must send (None: no check, warned about off loopback); `max_body_bytes`:
    the body cap (default `body_cap_bytes` of the default config).
    """
    cap = body_cap_bytes(VLLMConfig()) if max_body_bytes is None else max_body_bytes
    if cap < 1:
        raise ValueError(f"max_body_bytes must be positive, not {cap}")
    expected = None if token is None else token.encode()
    if expected is None and not is_loopback(host):
        print(
            f"WARNING: vlm-rl vllm-serve listens on {host} WITHOUT A TOKEN: anyone who reaches the port can replace "
            f"the served weights. Give the server and the trainer a token (rollout.vllm.token_file or ${TOKEN_VARIABLE}).",
            file=sys.stderr,
            flush=True,
        )
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        timeout = io_timeout_s

        def do_GET(self) -> None:
            if not self._authorized():
                return
            if self.path != "/health":
                return self._refuse(404, f"no endpoint GET {self.path}; try /health")
            self._reply(200, {"model": model, "max_body_bytes": cap})

        def do_POST(self) -> None:
            if not self._authorized():
                return
            if self.path not in ("/generate", "/load_weights"):
                return self._refuse(404, f"no endpoint POST {self.path}; try /generate or /load_weights")
            length = self._body_length()
            if length is None:
                return
            body = self.rfile.read(length)
            if len(body) < length:
                return self._refuse(400, f"the body ended after {len(body)} of its {length} bytes")
            try:
                if self.path == "/generate":
                    payload = json.loads(body)
                    requests = [decode_request(r) for r in payload["requests"]]
                    sampling = dict(payload["sampling"])
                    sampling["logit_bias"] = {int(k): v for k, v in sampling.get("logit_bias", {}).items()}
                else:
                    tensors = load_safetensors(body)
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

        def _authorized(self) -> bool:
            if expected is None:
                return True
            scheme, _, given = (self.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("latin-1", "replace"), expected):
                return True
            self._refuse(
                401,
                f"missing or wrong token; send the server's token (rollout.vllm.token_file or ${TOKEN_VARIABLE})",
                {"WWW-Authenticate": "Bearer"},
            )
            return False

        def _body_length(self) -> int | None:
            """The Content-Length to read, or None after refusing the request (the body is left unread)."""
            if self.headers.get("Transfer-Encoding"):
                return self._refuse(411, "send the body with a Content-Length, not a Transfer-Encoding")
            values = {v.strip() for v in self.headers.get_all("Content-Length") or []}
            if not values:
                return self._refuse(411, "a Content-Length header is required")
            if len(values) > 1 or not _BYTE_COUNT.fullmatch(next(iter(values))):
                return self._refuse(400, f"Content-Length {' / '.join(sorted(values))!r} is not one byte count")
            length = int(next(iter(values)))
            if length > cap:
                return self._refuse(
                    413, f"the body of {length} bytes is over this server's cap of {cap} bytes (rollout.vllm.max_body_mb)"
                )
            return length

        def _refuse(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
            """Answer `status` and close the connection without reading the body."""
            print(f"vlm-rl vllm-serve: {status} for {self.command} {self.path} from {self.client_address[0]}", file=sys.stderr)
            self.close_connection = True
            self._reply(status, {"error": message}, {"Connection": "close", **(headers or {})})

        def _reply(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", "Content-Length": str(len(data)), **(headers or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return ThreadingHTTPServer((host, port), Handler)


class RemoteVLLM:
    """The backend interface over HTTP to a `vlm-rl vllm-serve` at `base_url`.

    It sends the token `read_token(token_file)` finds, and refuses before sending a body the server would refuse
    as too large.
    """

    def __init__(self, base_url: str, *, timeout_s: float = 600.0, chunk_mb: int = 512, token_file: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.chunk_bytes = chunk_mb * 2**20
        self.token = read_token(token_file)
        health = self._call("GET", "/health", None)
        self.model = health["model"]
        self.max_body_bytes: int | None = health.get("max_body_bytes")

    def generate(self, requests: list[dict[str, Any]], sampling: dict[str, Any]) -> list[list[Completion]]:
        body = json.dumps({"requests": [encode_request(r) for r in requests], "sampling": sampling}).encode()
        self._check_size(body, f"a /generate request of {len(requests)} prompts", "send fewer prompts per request")
        outputs = self._call("POST", "/generate", body)["outputs"]
        return [[(list(ids), str(finish)) for ids, finish in completions] for completions in outputs]

    def load_weights(self, named: Iterable[tuple[str, torch.Tensor]]) -> int:
        loaded = 0
        for group in chunks(iter(named), self.chunk_bytes):
            body = save_safetensors(group)
            largest = max(group, key=lambda name: group[name].nbytes)
            smaller = "lower rollout.vllm.sync_chunk_mb" if len(group) > 1 else None
            self._check_size(body, f"a weight piece of {len(group)} tensors (largest: {largest})", smaller)
            loaded += self._call("POST", "/load_weights", body)["loaded"]
        return loaded

    def _check_size(self, body: bytes, what: str, or_else: str | None) -> None:
        """VLLMServerError, before sending, for a body over the cap the server announced."""
        if self.max_body_bytes is not None and len(body) > self.max_body_bytes:
            need = -(-len(body) // 2**20)
            raise VLLMServerError(
                f"vLLM server {self.base_url}: {what} is {len(body)} bytes, over the server's cap of "
                f"{self.max_body_bytes} bytes; start vlm-rl vllm-serve with rollout.vllm.max_body_mb={need} or more"
                + (f", or {or_else}" if or_else else "")
            )

    def _call(self, method: str, path: str, body: bytes | None) -> dict[str, Any]:
        url = self.base_url + path
        request = urllib.request.Request(url, data=body, method=method)
        if self.token is not None:
            request.add_header("Authorization", f"Bearer {self.token}")
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
