"""The synthesis server's door: its token and the checks every request passes before its body is read.

`read_token` follows `vlm-rl vllm-serve` (a file, else an environment variable; never a command-line value) with
its own variable, so the synthesis server and the vLLM server need not share a secret. `RequestGuard` is an ASGI
middleware: without the token every route but ``GET /health`` answers 401, and a POST without one plain
Content-Length gets 411 or 400, or 413 when it announces more than the cap, all before the body is read.
"""

from __future__ import annotations

import hmac
import json
import re
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from vlm_rl import network

TOKEN_VARIABLE = "VLM_RL_SYNTH_TOKEN"
"""The environment variable holding the token when no token file is named."""
OPEN_PATHS = frozenset({"/health"})

_BYTE_COUNT = re.compile(r"[0-9]{1,19}")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def read_token(token_file: str | Path | None) -> str | None:
    """The token in `token_file`, else ``$VLM_RL_SYNTH_TOKEN``, else None (`vlm_rl.network.read_token`)."""
    return network.read_token(token_file, TOKEN_VARIABLE)


class RequestGuard:
    """ASGI middleware: token check, then the body's announced length against `max_body_bytes`."""

    def __init__(self, app: App, *, token: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.expected = None if token is None else token.encode()
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if not self._authorized(scope):
            return await _refuse(
                scope, send, 401, f"missing or wrong token; send the server's token (--token-file or ${TOKEN_VARIABLE})",
                {"www-authenticate": "Bearer"},
            )
        if scope["method"] == "POST":
            problem = self._length_problem(scope)
            if problem is not None:
                return await _refuse(scope, send, *problem, {"connection": "close"})
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        if self.expected is None or (scope["path"] in OPEN_PATHS and scope["method"] in ("GET", "HEAD")):
            return True
        header = _header(scope, b"authorization") or b""
        scheme, _, given = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.expected)

    def _length_problem(self, scope: Scope) -> tuple[int, str] | None:
        if _header(scope, b"transfer-encoding") is not None:
            return 411, "send the body with a Content-Length, not a Transfer-Encoding"
        values = {v.strip() for k, v in scope["headers"] if k.lower() == b"content-length"}
        if not values:
            return 411, "a Content-Length header is required"
        text = b" / ".join(sorted(values)).decode("latin-1")
        if len(values) > 1 or not _BYTE_COUNT.fullmatch(text):
            return 400, f"Content-Length {text!r} is not one byte count"
        if int(text) > self.max_body_bytes:
            return 413, f"the body of {text} bytes is over this server's cap of {self.max_body_bytes} bytes (--max-body-mb)"
        return None


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((v for k, v in scope["headers"] if k.lower() == name), None)


async def _refuse(scope: Scope, send: Send, status: int, message: str, headers: dict[str, str]) -> None:
    client = scope.get("client") or ("unknown",)
    print(f"vlm-rl synth-server: {status} for {scope['method']} {scope['path']} from {client[0]}", file=sys.stderr, flush=True)
    body = json.dumps({"error": message}).encode()
    fields = {"content-type": "application/json", "content-length": str(len(body)), **headers}
    await send({"type": "http.response.start", "status": status, "headers": [(k.encode(), v.encode()) for k, v in fields.items()]})
    await send({"type": "http.response.body", "body": body})
