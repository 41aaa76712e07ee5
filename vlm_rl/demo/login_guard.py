"""What a client without a session may reach when the demo has a login: a plain login page and ``POST /login``.

Gradio's own page for such a client embeds the app's API description (endpoint names, and the model and run
names among its choices), and some of its routes answer anyone. `LoginGuard` is an ASGI middleware on the app
Gradio serves: a request without a valid session cookie gets `LOGIN_PAGE` at ``/``, may post ``/login``, and
gets 401 for anything else. Login attempts are counted per client address; an address that failed
`MAX_FAILURES` times within `WINDOW_S` seconds gets 429 until the oldest failure is that old.
The one other route open to all is `STARTUP_CHECK`, which Gradio calls on itself when it starts (it answers
true or false).
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import HTTPConnection

MAX_FAILURES = 5
WINDOW_S = 60.0
STARTUP_CHECK = "/gradio_api/startup-events"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

LOGIN_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in</title>
<style>
body { font-family: sans-serif; display: flex; justify-content: center; margin-top: 12vh; }
form { display: flex; flex-direction: column; gap: 10px; width: 280px; }
label { display: flex; flex-direction: column; gap: 4px; }
#message { color: #b71c1c; min-height: 1.2em; }
</style>
</head>
<body>
<form id="login">
<h2>Log in</h2>
<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Login</button>
<div id="message" role="alert"></div>
</form>
<script>
document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("login", {method: "POST", body: new URLSearchParams(new FormData(event.target))});
  if (response.ok) {
    location.reload();
    return;
  }
  document.getElementById("message").textContent = response.status === 429
    ? "Too many failed logins from this address; wait a minute and try again."
    : "Wrong username or password.";
});
</script>
</body>
</html>
"""


class LoginAttempts:
    """Login attempts per client address that did not succeed, each remembered for `window_s` seconds."""

    def __init__(
        self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def wait_s(self, address: str) -> float:
        """Seconds until `address` may try again; 0 when it may now."""
        self._forget_old()
        times = self._failures.get(address, ())
        if len(times) < self.max_failures:
            return 0.0
        return max(times[0] + self.window_s - self.clock(), 0.0)

    def failed(self, address: str) -> None:
        self._failures.setdefault(address, deque()).append(self.clock())

    def succeeded(self, address: str) -> None:
        """A login from `address` succeeded: one attempt, counted as failed until then, is taken back."""
        times = self._failures.get(address)
        if times:
            times.pop()
        if not times:
            self._failures.pop(address, None)

    def _forget_old(self) -> None:
        oldest = self.clock() - self.window_s
        for address in list(self._failures):
            times = self._failures[address]
            while times and times[0] <= oldest:
                times.popleft()
            if not times:
                del self._failures[address]


class LoginGuard:
    """ASGI middleware in front of a Gradio app started with ``auth``: only the login reaches it without a session.

    Reads the Gradio app's session tokens (``scope["app"].tokens``, cookie ``access-token[-unsecure]-<cookie_id>``),
    the same check Gradio's own routes make.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], attempts: LoginAttempts | None = None) -> None:
        self.app = app
        self.attempts = attempts or LoginAttempts()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path, method = scope["path"].rstrip("/") or "/", scope.get("method")
        if path == "/login" and method == "POST":  # counted with or without a session
            return await self._login(scope, receive, send)
        if self._logged_in(scope):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        if path == STARTUP_CHECK and method == "GET":
            return await self.app(scope, receive, send)
        if path == "/" and method in ("GET", "HEAD"):
            return await _respond(send, 200, LOGIN_PAGE.encode(), "text/html; charset=utf-8", head=method == "HEAD")
        body = json.dumps({"error": "log in first"}).encode()
        await _respond(send, 401, body, "application/json", head=method == "HEAD")

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        address = scope["client"][0] if scope.get("client") else "unknown"
        wait = self.attempts.wait_s(address)
        if wait > 0:
            body = json.dumps({"error": f"too many failed logins; try again in {math.ceil(wait)} s"}).encode()
            return await _respond(send, 429, body, "application/json", {"Retry-After": str(math.ceil(wait))})
        self.attempts.failed(address)  # counted before it runs, so parallel attempts cannot pass the limit
        status = None

        async def watch(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if status == 200:
            self.attempts.succeeded(address)

    @staticmethod
    def _logged_in(scope: Scope) -> bool:
        app = scope.get("app")
        tokens, cookie_id = getattr(app, "tokens", None), getattr(app, "cookie_id", None)
        if not tokens or cookie_id is None:
            return False
        cookies = HTTPConnection(scope).cookies
        return any(cookies.get(f"access-token{kind}-{cookie_id}") in tokens for kind in ("", "-unsecure"))


async def _respond(
    send: Send, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None, *, head: bool = False
) -> None:
    fields = {"content-type": content_type, "content-length": str(len(body)), "cache-control": "no-store", **(headers or {})}
    await send({"type": "http.response.start", "status": status, "headers": [(k.lower().encode(), v.encode()) for k, v in fields.items()]})
    await send({"type": "http.response.body", "body": b"" if head else body})
