"""The synthesis server's work: a bounded queue of jobs, a pool of worker threads running the generator, counters.

Threads suit both generators: the procedural one spends its time in numpy and PIL, the diffusers one in torch,
and both release the GIL there (the diffusers generator runs one image at a time in any case). A job's number
is in the queue only once its job file is written, and a worker's result counts only once its sample file is,
so what the queue holds at a kill is what `JobStore.pending` returns at the next start.
"""

from __future__ import annotations

import io
import math
import sys
import threading
import time
from collections import deque
from typing import Any

from PIL import Image

from data_pipelines.synthesis import Generator
from vlm_rl.synthesis.store import JobStore

RATE_WINDOW_S = 30.0
"""Completions within this many seconds make the jobs/s figure."""
MAX_RETRY_AFTER_S = 30


class QueueFull(Exception):
    """The queue holds `max_queue` jobs; try again after `retry_after_s` seconds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the job queue is full; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class SynthesisService:
    """Runs the jobs of `store` with `generator` on `workers` threads; at most `max_queue` jobs wait."""

    def __init__(self, store: JobStore, generator: Generator, *, workers: int, max_queue: int) -> None:
        if workers < 1 or max_queue < 1:
            raise ValueError(f"workers and max_queue must be at least 1, not {workers} and {max_queue}")
        self.store = store
        self.generator = generator
        self.workers = workers
        self.max_queue = max_queue
        self.resumed = store.pending()
        self._queue: deque[int] = deque(self.resumed)
        self._cond = threading.Condition()
        self._reserved = self._running = self._accepted = self._rejected = self._invalid = 0
        self._finished_at: deque[float] = deque()
        self._started = time.monotonic()
        self._stopping = False
        self._threads = [threading.Thread(target=self._work, name=f"synth-worker-{i}", daemon=True) for i in range(workers)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Let the workers finish the job in hand; what is still queued stays pending in the store."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout_s)

    def submit(self, spec: dict[str, Any], source_png: bytes | None) -> int:
        """Accept a job; its number. QueueFull when `max_queue` jobs are waiting."""
        with self._cond:
            if len(self._queue) + self._reserved >= self.max_queue:
                self._rejected += 1
                raise QueueFull(self._retry_after_s())
            self._reserved += 1
        try:
            job = self.store.add_job(dict(spec, submitted_at=time.time()), source_png)
        finally:
            with self._cond:
                self._reserved -= 1
        with self._cond:
            self._queue.append(job)
            self._accepted += 1
            self._cond.notify()
        return job

    def count_invalid(self) -> None:
        with self._cond:
            self._invalid += 1

    def metrics(self) -> dict[str, Any]:
        with self._cond:
            now = time.monotonic()
            self._forget_old(now)
            return {
                "queued": len(self._queue),
                "running": self._running,
                "done": self.store.done_count,
                "failed": self.store.failed_count,
                "accepted": self._accepted,
                "rejected": self._rejected,
                "invalid": self._invalid,
                "resumed": len(self.resumed),
                "jobs_per_s": round(self._rate(now), 3),
                "workers": self.workers,
                "max_queue": self.max_queue,
                "generator": self.generator.name,
                "uptime_s": round(now - self._started, 3),
            }

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job = self._queue.popleft()
                self._running += 1
            try:
                self._run(job)
            except Exception as err:  # one job's failure is recorded; the worker goes on with the next
                message = f"{type(err).__name__}: {err}"
                print(f"vlm-rl synth-server: job {job} failed: {message}", file=sys.stderr, flush=True)
                self.store.fail(job, message)
            finally:
                with self._cond:
                    self._running -= 1

    def _run(self, job: int) -> None:
        spec = self.store.job(job)
        with Image.open(self.store.workdir / spec["image_path"]) as source:
            source.load()
            image = self.generator.generate(source, spec["boxes"], spec["labels"], spec["description"], spec["seed"])
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        record = {
            "id": f"synth-{job:08d}",
            "parent_id": spec["source_id"],
            "description": spec["description"],
            "boxes": spec["boxes"],
            "labels": spec["labels"],
            "seed": spec["seed"],
            "generator": self.generator.name,
            "image_path": str(self.store.image_path(job).relative_to(self.store.workdir)),
            "submitted_at": spec["submitted_at"],
            "finished_at": time.time(),
        }
        self.store.finish(job, buffer.getvalue(), record)
        with self._cond:
            self._finished_at.append(time.monotonic())

    def _forget_old(self, now: float) -> None:
        while self._finished_at and self._finished_at[0] < now - RATE_WINDOW_S:
            self._finished_at.popleft()

    def _rate(self, now: float) -> float:
        return len(self._finished_at) / max(min(RATE_WINDOW_S, now - self._started), 1.0)

    def _retry_after_s(self) -> int:
        """About the time until a worker takes the next job (one job's time over the workers), 1 to 30 s."""
        now = time.monotonic()
        self._forget_old(now)
        rate = self._rate(now)
        return 1 if rate <= 0 else min(max(math.ceil(1 / rate), 1), MAX_RETRY_AFTER_S)
