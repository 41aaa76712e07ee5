"""The demo reads files only under the roots it was given: the upload folder, the examples and the run folders."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from vlm_rl.demo.settings import DemoError


class PathGuard:
    """Resolves a path (symbolic links and ``..`` included) and refuses it unless it lies under an allowed root."""

    def __init__(self, roots: Iterable[str | os.PathLike[str]]) -> None:
        self.roots = tuple(Path(root).resolve() for root in roots)
        if not self.roots:
            raise ValueError("PathGuard needs at least one allowed root")

    def check(self, path: str | os.PathLike[str]) -> Path:
        """The resolved path; DemoError when it is outside every root."""
        resolved = Path(path).resolve()
        if not any(resolved == root or resolved.is_relative_to(root) for root in self.roots):
            raise DemoError(
                f"{Path(path).name}: the demo reads only uploads, its examples and the run folders it was given"
            )
        return resolved
