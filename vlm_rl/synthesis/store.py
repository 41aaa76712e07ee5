"""The synthesis server's jobs and finished samples, kept as numbered files in its workdir.

Layout (every file written to a temporary name and renamed, so a kill leaves no half file under a real name)::

    WORKDIR/.lock                       held (flock) by the server using the workdir
    WORKDIR/jobs/00000007.json          job 7, accepted: what to make (written last at submission)
    WORKDIR/sources/00000007.png        job 7's source image when it came inline
    WORKDIR/images/00000007.png         the image job 7 made
    WORKDIR/samples/00000003-00000007.json   finished sample 3, made by job 7 (written last at completion)
    WORKDIR/failed/00000007.json        job 7 failed: the error

A job is accepted once its job file exists and done once a sample file names it, so a job killed before its
sample file is written runs again at the next start and one whose sample file exists never does. Sample numbers
are given in completion order, one at a time, from 1 without gaps: a consumer that remembers the last number it
read asks for the ones after it and gets each sample once. Jobs are numbered from 1 in submission order.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

_SAMPLE_NAME = re.compile(r"(\d{8})-(\d{8})\.json")
_JOB_NAME = re.compile(r"(\d{8})\.json")
_FOLDERS = ("jobs", "sources", "images", "samples", "failed")


class StoreError(RuntimeError):
    """The workdir cannot be used: held by another server, or its files contradict each other."""


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path` and rename it over `path`."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


class JobStore:
    """Jobs and samples under `workdir`, locked for this process; thread-safe."""

    def __init__(self, workdir: str | Path) -> None:
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.workdir / ".lock", "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StoreError(f"{self.workdir} is in use by another synthesis server; stop it or choose another --workdir") from None
        for folder in _FOLDERS:
            (self.workdir / folder).mkdir(exist_ok=True)
            for leftover in (self.workdir / folder).glob(".*.tmp"):
                leftover.unlink()
        self._mutex = threading.Lock()
        self._jobs = sorted(self._numbers("jobs", _JOB_NAME))
        self._failed = set(self._numbers("failed", _JOB_NAME))
        self._sample_jobs = self._read_sample_index()
        self._done = set(self._sample_jobs)
        self._next_job = (self._jobs[-1] if self._jobs else 0) + 1

    def close(self) -> None:
        self._lock_file.close()

    @property
    def done_count(self) -> int:
        return len(self._sample_jobs)

    @property
    def failed_count(self) -> int:
        return len(self._failed)

    def pending(self) -> list[int]:
        """Accepted jobs with neither a sample nor a failure, oldest first."""
        with self._mutex:
            return sorted(j for j in self._jobs if j not in self._done and j not in self._failed)

    def add_job(self, spec: dict[str, Any], source_png: bytes | None) -> int:
        """Accept a job (`source_png`: its inline source image); its number once the job file is written."""
        with self._mutex:
            job = self._next_job
            self._next_job += 1
        record = dict(spec, job=job)
        if source_png is not None:
            write_atomic(self.source_path(job), source_png)
            record["image_path"] = str(self.source_path(job).relative_to(self.workdir))
        write_atomic(self._job_path(job), json.dumps(record).encode())
        with self._mutex:
            self._jobs.append(job)
        return job

    def job(self, job: int) -> dict[str, Any]:
        return json.loads(self._job_path(job).read_text())

    def source_path(self, job: int) -> Path:
        return self.workdir / "sources" / f"{job:08d}.png"

    def image_path(self, job: int) -> Path:
        return self.workdir / "images" / f"{job:08d}.png"

    def finish(self, job: int, image_png: bytes, record: dict[str, Any]) -> int:
        """Store job `job`'s image and sample `record`; the sample's number."""
        write_atomic(self.image_path(job), image_png)
        with self._mutex:
            if job in self._done:
                raise StoreError(f"job {job} already has a sample; it must not run twice")
            seq = len(self._sample_jobs) + 1
            name = f"{seq:08d}-{job:08d}.json"
            write_atomic(self.workdir / "samples" / name, json.dumps(dict(record, seq=seq, job=job)).encode())
            self._sample_jobs.append(job)
            self._done.add(job)
        return seq

    def fail(self, job: int, error: str) -> None:
        write_atomic(self.workdir / "failed" / f"{job:08d}.json", json.dumps({"job": job, "error": error}).encode())
        with self._mutex:
            self._failed.add(job)

    def samples_after(self, cursor: int, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` finished samples numbered after `cursor`, in order."""
        last = min(cursor + limit, len(self._sample_jobs))
        jobs = self._sample_jobs[cursor:last]
        return [
            json.loads((self.workdir / "samples" / f"{seq:08d}-{job:08d}.json").read_text())
            for seq, job in enumerate(jobs, start=cursor + 1)
        ]

    def _job_path(self, job: int) -> Path:
        return self.workdir / "jobs" / f"{job:08d}.json"

    def _numbers(self, folder: str, pattern: re.Pattern[str]) -> list[int]:
        return [int(m.group(1)) for p in (self.workdir / folder).iterdir() if (m := pattern.fullmatch(p.name))]

    def _read_sample_index(self) -> list[int]:
        """The job of each sample, by sample number; StoreError for a gap or a job with two samples."""
        found = {}
        for path in (self.workdir / "samples").iterdir():
            if m := _SAMPLE_NAME.fullmatch(path.name):
                found[int(m.group(1))] = int(m.group(2))
        jobs = [found.get(seq) for seq in range(1, len(found) + 1)]
        if None in jobs:
            raise StoreError(f"{self.workdir / 'samples'}: sample numbers are not 1..{len(found)}; the folder was changed by hand")
        if len(set(jobs)) != len(jobs):
            raise StoreError(f"{self.workdir / 'samples'}: a job has two samples; the folder was changed by hand")
        return jobs  # type: ignore[return-value]
