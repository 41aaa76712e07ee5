"""Settings of one demo server: where it listens, who may use it, what it accepts and what it may read."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


class DemoError(ValueError):
    """Input the demo cannot use (bad upload, missing field, unknown run); shown to the user as one line."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/vlm-rl/demo`` (``~/.cache/vlm-rl/demo`` when the variable is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vlm-rl" / "demo"


@dataclass(frozen=True)
class DemoConfig:
    """Everything `vlm-rl demo` is started with; the defaults are those of the command line."""

    models: tuple[Path, ...]
    runs: tuple[Path, ...] = ()
    host: str = "127.0.0.1"
    port: int = 7860
    auth: tuple[str, str] | None = None
    max_upload_mb: float = 50.0
    max_video_seconds: float = 120.0
    cache_dir: Path = field(default_factory=default_cache_dir)

    def __post_init__(self) -> None:
        if not self.models:
            raise DemoError("the demo needs at least one model directory (--model DIR)")
        if len({Path(m).resolve() for m in self.models}) != len(self.models):
            raise DemoError("a model directory is given twice; give each one once")
        for kind, path in [*(("model", m) for m in self.models), *(("run", r) for r in self.runs)]:
            if not Path(path).is_dir():
                raise DemoError(f"{kind} directory {path} does not exist")
        if self.max_upload_mb <= 0 or self.max_video_seconds <= 0:
            raise DemoError("--max-upload-mb and --max-video-seconds must be positive")
        if not 0 <= self.port <= 65535:
            raise DemoError(f"--port {self.port} is not a TCP port number (0 to 65535)")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """``"user:pass"`` -> ``("user", "pass")``; DemoError when either part is empty."""
    if text is None:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise DemoError("--auth must look like user:password (both parts non-empty)")
    return user, password
