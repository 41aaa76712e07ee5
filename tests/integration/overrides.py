"""Apply dotted overrides to an already loaded config (tests start from the `run_config` fixture)."""

from __future__ import annotations

import tempfile

import yaml

from vlm_rl.config import RunConfig, load_config, to_dict


def with_overrides(config: RunConfig, overrides: list[str]) -> RunConfig:
    """`config` with `overrides` applied, validated like a config file."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(to_dict(config), handle)
    return load_config(handle.name, overrides)
