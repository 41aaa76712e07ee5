"""Apply dotted overrides to an already loaded config (tests start from the `run_config` fixture)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from vlm_rl.config import RunConfig, load_config, to_dict


def with_overrides(config: RunConfig, overrides: list[str]) -> RunConfig:
    """`config` with `overrides` applied, validated like a config file (read from a directory removed on return)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(yaml.safe_dump(to_dict(config)))
        return load_config(path, overrides)
