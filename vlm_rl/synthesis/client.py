"""The trainer's side of `vlm-rl synth-server`: submit and fetch without ever waiting on the network.

`SynthesisClient.submit` puts the job in a local outbox and returns; `fetch` hands over what a background thread
has already downloaded. The thread posts the outbox in order (waiting out a 429's Retry-After, keeping the job
while the server is unreachable) and polls ``GET /samples`` after the last number it has. Whatever happens on
the network shows in `state` and `status()`, never as an exception in the trainer.

`cursor` is the number of the last sample `fetch` returned: save it with the trainer's checkpoint and give it
back as ``cursor=`` after a restart, and each sample reaches the trainer once.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from vlm_rl.synthesis.guard import read_token

MAX_WAIT_S = 30.0
"""The longest a 429's Retry-After holds back the next post."""
METRICS_EVERY_S = 1.0
"""How often the server's queue depth is read."""


@dataclass(frozen=True)
class SynthSample:
    """A finished sample: the new image and the boxes and labels of its source, which it keeps."""

    seq: int
    id: str
    parent_id: str
    image: Image.Image
    boxes: list[list[float]]
    labels: list[str]
    description: str
    seed: int


@dataclass(frozen=True)
class ClientStatus:
    state: str
    last_error: str | None
    submitted: int
    refused: int
    dropped: int
    outbox: int
    buffered: int
    cursor: int
    queue_depth: int | None
    """Jobs waiting in the server's queue at the last reading (None before one)."""


class SynthesisClient:
    """A client of the server at `base_url` that never blocks its caller.

    `max_outbox` jobs wait to be posted (a submit beyond that is dropped and counted); `max_buffer` samples wait to
    be fetched. `images`: "inline" downloads each image, "path" reads it from the server's workdir on this machine.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token_file: str | Path | None = None,
        cursor: int = 0,
        timeout_s: float = 10.0,
        poll_s: float = 0.5,
        max_outbox: int = 256,
        max_buffer: int = 256,
        images: str = "inline",
    ) -> None:
        if images not in ("inline", "path"):
            raise ValueError(f"images must be 'inline' or 'path', not {images!r}")
        self.base_url = base_url.rstrip("/")
        self.token = read_token(token_file)
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.max_outbox = max_outbox
        self.max_buffer = max_buffer
        self.images = images
        self.cursor = cursor
        self._fetched_to = cursor
        self._outbox: deque[dict[str, Any]] = deque()
        self._buffer: deque[SynthSample] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._state = "connecting"
        self._last_error: str | None = None
        self._submitted = self._refused = self._dropped = 0
        self._post_after = 0.0
        self._queue_depth: int | None = None
        self._metrics_at = 0.0
        self._thread = threading.Thread(target=self._loop, name="synth-client", daemon=True)
        self._thread.start()

    @property
    def state(self) -> str:
        """connecting: no answer yet; up: the last call worked; busy: the last job got 429 and waits its
        Retry-After; down: the server cannot be reached (calls are retried); unauthorized: the token was refused."""
        return self._state

    def submit(
        self, image: Image.Image, boxes: Sequence[Sequence[float]], labels: Sequence[str], description: str, *,
        seed: int, source_id: str,
    ) -> bool:
        """Queue a job for the server; False (and counted as dropped) when the outbox is full."""
        job = {
            "image": image.copy(), "boxes": [list(map(float, b)) for b in boxes], "labels": list(labels),
            "description": description, "seed": seed, "source_id": source_id,
        }
        with self._lock:
            if len(self._outbox) >= self.max_outbox:
                self._dropped += 1
                return False
            self._outbox.append(job)
        self._wake.set()
        return True

    def fetch(self, max_items: int | None = None) -> list[SynthSample]:
        """The samples downloaded so far (at most `max_items`), in order; advances `cursor`."""
        with self._lock:
            count = len(self._buffer) if max_items is None else min(max_items, len(self._buffer))
            taken = [self._buffer.popleft() for _ in range(count)]
        if taken:
            self.cursor = taken[-1].seq
            self._wake.set()
        return taken

    def status(self) -> ClientStatus:
        with self._lock:
            return ClientStatus(
                self._state, self._last_error, self._submitted, self._refused, self._dropped, len(self._outbox),
                len(self._buffer), self.cursor, self._queue_depth,
            )

    def close(self) -> None:
        """Stop the background thread; jobs still in the outbox are not sent."""
        self._stop.set()
        self._wake.set()
        self._thread.join(self.timeout_s + 1)

    def _loop(self) -> None:
        while not self._stop.is_set():
            busy = self._post_next() | self._poll()
            self._read_queue_depth()
            if not busy:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def _post_next(self) -> bool:
        """Post the oldest waiting job if it is time; True when one went through (there may be more)."""
        with self._lock:
            job = self._outbox[0] if self._outbox else None
        if job is None or time.monotonic() < self._post_after:
            return False
        buffer = io.BytesIO()
        job["image"].save(buffer, format="PNG")
        body = dict(job, image=base64.b64encode(buffer.getvalue()).decode())
        status, answer, headers = self._call("POST", "/jobs", json.dumps(body).encode())
        if status == 429:
            wait = float(headers.get("Retry-After") or 1)
            self._post_after = time.monotonic() + min(max(wait, 0.1), MAX_WAIT_S)
            self._set_state("busy", answer.get("error"))
            return False
        if status is None or status == 401:  # kept for when the server is back (or restarted with this token)
            self._post_after = time.monotonic() + self.poll_s
            return False
        with self._lock:
            self._outbox.popleft()
            if status == 202:
                self._submitted += 1
            else:  # a job the server will never take: counted, not retried
                self._refused += 1
                self._last_error = f"job {job['source_id']}: HTTP {status}: {answer.get('error')}"
        return status == 202

    def _poll(self) -> bool:
        """Download samples after the last one held, while there is room; True when some came."""
        with self._lock:
            room = self.max_buffer - len(self._buffer)
        if room <= 0:
            return False
        status, answer, _ = self._call("GET", f"/samples?cursor={self._fetched_to}&limit={min(room, 256)}&images={self.images}", None)
        if status != 200:
            return False
        samples = [self._sample(s) for s in answer["samples"]]
        with self._lock:
            self._buffer.extend(samples)
        if samples:
            self._fetched_to = samples[-1].seq
        return bool(samples)

    def _read_queue_depth(self) -> None:
        """Read the server's queue depth, at most every `METRICS_EVERY_S`."""
        if time.monotonic() < self._metrics_at:
            return
        self._metrics_at = time.monotonic() + METRICS_EVERY_S
        status, answer, _ = self._call("GET", "/metrics", None)
        if status == 200:
            with self._lock:
                self._queue_depth = int(answer["queued"])

    def _sample(self, record: dict[str, Any]) -> SynthSample:
        source = io.BytesIO(base64.b64decode(record["image"])) if "image" in record else record["image_path"]
        with Image.open(source) as image:
            image.load()
        return SynthSample(
            seq=record["seq"], id=record["id"], parent_id=record["parent_id"], image=image, boxes=record["boxes"],
            labels=record["labels"], description=record["description"], seed=record["seed"],
        )

    def _call(self, method: str, path: str, body: bytes | None) -> tuple[int | None, dict[str, Any], dict[str, str]]:
        """(HTTP status or None when unreachable, the JSON answer, the headers); sets `state`."""
        request = urllib.request.Request(self.base_url + path, data=body, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token is not None:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = json.loads(response.read())
                self._set_state("up", None)
                return response.status, answer, dict(response.headers)
        except urllib.error.HTTPError as err:
            try:
                answer = json.loads(err.read())
            except ValueError:
                answer = {"error": err.reason}
            if err.code == 401:
                self._set_state("unauthorized", answer.get("error"))
            elif err.code != 429:
                self._set_state("up", None)
            return err.code, answer, dict(err.headers)
        except (urllib.error.URLError, OSError, ValueError) as err:
            self._set_state("down", f"{self.base_url} cannot be reached ({getattr(err, 'reason', err)})")
            return None, {}, {}

    def _set_state(self, state: str, error: str | None) -> None:
        with self._lock:
            self._state = state
            if error is not None:
                self._last_error = error
