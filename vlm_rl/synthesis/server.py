"""`vlm-rl synth-server`: the Syn-GRPO data server, FastAPI on uvicorn over `SynthesisService`.

Endpoints (JSON; errors are ``{"error": message}``, one message per request):

- ``POST /jobs`` `JobRequest` → 202 ``{"job": n, "queued": depth}``; 429 with ``Retry-After`` when the queue is
  full; 400 for a body that is not JSON; 403 for an ``image_path`` outside the workdir; 422 for anything else
  wrong (an unknown field, a box not inside the image, an image that is not a PNG or over `MAX_SIDE` a side).
- ``GET /samples?cursor=N&limit=M&images=inline|path`` → ``{"samples": [...], "cursor": last number returned
  (N when none), "done": samples so far}``: finished samples numbered after N in completion order, each with its
  image as base64 PNG (``image``) or as a path on the server (``image_path``), and the boxes, labels, description,
  seed and ``parent_id`` (the source's id) it was made from.
- ``GET /metrics`` → queue depth, running, done, failed, accepted, rejected (429s), invalid, jobs/s.
- ``GET /health`` → ``{"status": "ok"}``, the one route open without the token.

Protection (`RequestGuard`, docs/servers.md): the token, then the announced body length against the cap, both
before the body is read. The server binds to loopback unless told otherwise, and refuses any other address
without a token.
"""

from __future__ import annotations

import base64
import binascii
import io
import socket
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from data_pipelines.synthesis import GeneratorError, check_boxes, make_generator
from data_pipelines.synthesis.scene_prompt import MAX_DESCRIPTION_CHARS
from vlm_rl.config import ConfigError
from vlm_rl.network import is_loopback
from vlm_rl.synthesis.guard import TOKEN_VARIABLE, RequestGuard
from vlm_rl.synthesis.service import QueueFull, SynthesisService
from vlm_rl.synthesis.store import JobStore, StoreError

MAX_SIDE = 4096
"""The largest source image width or height, in pixels."""
MAX_BOXES = 256
MAX_TEXT = MAX_DESCRIPTION_CHARS
MAX_ID = 256
MAX_LIMIT = 256
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

Coordinate = Annotated[float, Field(allow_inf_nan=False)]


class JobRequest(BaseModel):
    """One synthesis job: exactly one of `image` (base64 PNG) and `image_path` (a file inside the workdir)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    image: str | None = None
    image_path: Annotated[str, Field(max_length=4096)] | None = None
    boxes: Annotated[list[Annotated[list[Coordinate], Field(min_length=4, max_length=4)]], Field(max_length=MAX_BOXES)]
    labels: Annotated[list[Annotated[str, Field(max_length=MAX_ID)]], Field(max_length=MAX_BOXES)]
    description: Annotated[str, Field(max_length=MAX_TEXT)] = ""
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    source_id: Annotated[str, Field(min_length=1, max_length=MAX_ID)]


def build_app(service: SynthesisService, *, token: str | None, max_body_bytes: int) -> RequestGuard:
    """The ASGI application: the FastAPI routes behind `RequestGuard`."""
    store = service.store
    app = FastAPI(title="vlm-rl synth-server", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        if err.status_code in (404, 405):
            return _error(err.status_code, f"no endpoint {request.method} {request.url.path}; "
                          "the endpoints are POST /jobs, GET /samples, GET /metrics, GET /health")
        return _error(err.status_code, str(err.detail), err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        if request.url.path == "/jobs":
            service.count_invalid()
        problems = err.errors()
        if any(p["type"] == "json_invalid" for p in problems):
            return _error(400, "the body is not valid JSON; send one JSON object")
        return _error(422, _describe(problems[0]))

    @app.exception_handler(Exception)
    async def failed(request: Request, err: Exception) -> JSONResponse:
        return _error(500, f"{request.method} {request.url.path} failed: {type(err).__name__}: {err}")

    @app.post("/jobs", status_code=202)
    def submit(job: JobRequest) -> Any:
        try:
            source_png, image_path, size = _source(job, store.workdir)
            check_boxes(job.boxes, job.labels, size)
        except HTTPException as err:
            service.count_invalid()
            return _error(err.status_code, str(err.detail))
        except GeneratorError as err:
            service.count_invalid()
            return _error(422, str(err))
        spec = job.model_dump(exclude={"image"})
        if image_path is not None:
            spec["image_path"] = image_path
        try:
            number = service.submit(spec, source_png)
        except QueueFull as full:
            return _error(429, str(full), {"Retry-After": str(full.retry_after_s)})
        return {"job": number, "queued": service.metrics()["queued"]}

    @app.get("/samples")
    def samples(
        cursor: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 64,
        images: Literal["inline", "path"] = "inline",
    ) -> dict[str, Any]:
        found = store.samples_after(cursor, limit)
        for sample in found:
            path = store.workdir / sample.pop("image_path")
            if images == "inline":
                sample["image"] = base64.b64encode(path.read_bytes()).decode()
            else:
                sample["image_path"] = str(path)
        return {"samples": found, "cursor": found[-1]["seq"] if found else cursor, "done": store.done_count}

    @app.get("/metrics")
    def metrics() -> dict[str, Any]:
        return service.metrics()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return RequestGuard(app, token=token, max_body_bytes=max_body_bytes)


def serve(
    workdir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8100,
    token: str | None = None,
    generator: str = "procedural",
    model_path: str | None = None,
    device: str | None = None,
    workers: int = 2,
    max_queue: int = 256,
    max_body_mb: int = 32,
) -> None:
    """Run the server until SIGINT or SIGTERM; ConfigError (one line) for anything that stops it starting."""
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} without a token: anyone who reaches the port could fill the queue and read "
            f"the samples; give a --token-file (or ${TOKEN_VARIABLE}), or keep the default host 127.0.0.1"
        )
    if workers < 1 or max_queue < 1 or max_body_mb < 1:
        raise ConfigError(f"--workers, --max-queue and --max-body-mb must be at least 1, not {workers}, {max_queue}, {max_body_mb}")
    try:
        made = make_generator(generator, model_path=model_path, device=device)
        store = JobStore(workdir)
    except (GeneratorError, StoreError) as err:
        raise ConfigError(str(err)) from None
    except OSError as err:
        raise ConfigError(f"--workdir {workdir} cannot be used ({err.strerror or err}); name a folder you can write") from None
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.create_server((host, port), family=family)
    except OSError as err:
        store.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({err.strerror or err}); choose another --host or --port") from None
    service = SynthesisService(store, made, workers=workers, max_queue=max_queue)
    service.start()
    app = build_app(service, token=token, max_body_bytes=max_body_mb * 2**20)
    bound = sock.getsockname()[1]
    guard = "clients must send the token" if token else "no token"
    shown = f"[{host}]" if ":" in host else host
    print(
        f"vlm-rl synth-server: serving http://{shown}:{bound} from {store.workdir} ({made.name} generator, {workers} workers, "
        f"queue of {max_queue}, {len(service.resumed)} pending jobs resumed, {store.done_count} samples done; {guard})",
        flush=True,
    )
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")).run(sockets=[sock])
    finally:
        service.stop()
        store.close()


def _source(job: JobRequest, workdir: Path) -> tuple[bytes | None, str | None, tuple[int, int]]:
    """(inline PNG bytes, image path relative to the workdir, (width, height)); HTTPException when unusable."""
    if (job.image is None) == (job.image_path is None):
        raise HTTPException(422, "give exactly one of image (a base64 PNG) and image_path (a file inside the workdir)")
    if job.image is not None:
        try:
            data = base64.b64decode(job.image, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPException(422, "image is not base64; send the PNG file's bytes base64-encoded") from None
        if not data.startswith(PNG_MAGIC):
            raise HTTPException(422, "image is not a PNG; send a PNG file base64-encoded")
        return data, None, _image_size(io.BytesIO(data), "image")
    path = (workdir / job.image_path).resolve()
    if not path.is_relative_to(workdir):
        raise HTTPException(403, f"image_path {job.image_path!r} is outside the server's workdir {workdir}; put the file under it")
    if not path.is_file():
        raise HTTPException(422, f"image_path {job.image_path!r} is not a file under the workdir {workdir}")
    return None, str(path.relative_to(workdir)), _image_size(path, f"image_path {job.image_path!r}")


def _image_size(source: io.BytesIO | Path, what: str) -> tuple[int, int]:
    try:
        with Image.open(source) as image:
            size = image.size
            if max(size) > MAX_SIDE:
                raise HTTPException(422, f"{what} is {size[0]}x{size[1]}, over this server's cap of {MAX_SIDE} pixels a side")
            image.load()
    except HTTPException:
        raise
    except Exception as err:  # PIL raises many kinds for a damaged file
        raise HTTPException(422, f"{what} is not a readable image ({type(err).__name__}: {err})") from None
    return size


def _describe(problem: dict[str, Any]) -> str:
    """One line for a validation problem: the field (dotted) and what is wrong with it."""
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem["loc"][1:]).lstrip(".")
    where = where or "the body"
    if problem["type"] == "extra_forbidden":
        fields = ", ".join(JobRequest.model_fields)
        return f"unknown field {where!r}; a job has the fields {fields}"
    return f"{where}: {problem['msg']}"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    if status >= 500:
        print(f"vlm-rl synth-server: {status}: {message}", file=sys.stderr, flush=True)
    return JSONResponse({"error": message}, status_code=status, headers=headers)
