"""Settings of one demo server: where it listens, who may use it, what it accepts and what it may read."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

AUTH_VARIABLE = "VLM_RL_DEMO_AUTH"
"""The environment variable holding ``user:password`` lines when no --auth-file is given."""


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
    auth: tuple[tuple[str, str], ...] = ()
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


def parse_credentials(text: str, where: str) -> tuple[tuple[str, str], ...]:
    """``user:password`` lines (blank lines skipped, surrounding spaces ignored) as pairs.

    DemoError naming `where` and the line (never its content) for a malformed line, a repeated user or no line.
    """
    pairs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        user, sep, password = line.strip().partition(":")
        if not sep or not user or not password:
            raise DemoError(f"{where} line {number} must look like user:password (both parts non-empty)")
        if user in pairs:
            raise DemoError(f"{where} line {number} repeats the user {user}; give each user once")
        pairs[user] = password
    if not pairs:
        raise DemoError(f"{where} holds no user:password line")
    return tuple(pairs.items())


def read_credentials(auth_file: str | os.PathLike[str] | None) -> tuple[tuple[str, str], ...]:
    """The logins: the lines of `auth_file` when given, else of ``$VLM_RL_DEMO_AUTH``, else none (no login)."""
    if auth_file:
        path = Path(auth_file).expanduser()
        try:
            text = path.read_text()
        except OSError as err:
            raise DemoError(f"--auth-file {path} cannot be read ({err.strerror}); name a file of user:password lines") from None
        return parse_credentials(text, f"--auth-file {path}")
    text = os.environ.get(AUTH_VARIABLE, "")
    return parse_credentials(text, f"${AUTH_VARIABLE}") if text.strip() else ()
