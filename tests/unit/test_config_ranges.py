"""Every numeric config field declares the values it accepts, and a value outside them is refused on load with
one line naming the dotted key, the value and the allowed range."""

from __future__ import annotations

import dataclasses
import math
import types
import typing

import pytest

from vlm_rl.config import ConfigError, Range, RunConfig, check_ranges, describe, load_config


def _numeric_type(tp: typing.Any) -> type | None:
    """int or float for a field annotated int / float / int | None / float | None; None for anything else."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 and args[0] in (int, float) else None
    return tp if tp in (int, float) else None


def _numeric_fields(cls: type = RunConfig, prefix: str = "") -> list[tuple[str, type, dataclasses.Field]]:
    """(dotted key, int or float, field) of every numeric field of the config tree."""
    found = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            found.extend(_numeric_fields(tp, f"{prefix}{f.name}."))
        elif _numeric_type(tp) is not None:
            found.append((f"{prefix}{f.name}", _numeric_type(tp), f))
    return found


FIELDS = _numeric_fields()


def _outside(kind: type, bounds: Range) -> list[typing.Any]:
    """Values just outside each finite side of `bounds`: below a lower limit, above an upper one."""
    step = 1 if kind is int else 0.5
    values = []
    if bounds.ge is not None:
        values.append(bounds.ge - step)
    if bounds.gt is not None:
        values.append(bounds.gt)
    if bounds.le is not None:
        values.append(bounds.le + step)
    if bounds.lt is not None:
        values.append(bounds.lt)
    return [kind(v) for v in values]


def _edges(kind: type, bounds: Range) -> list[typing.Any]:
    """The inclusive limits themselves, which must be accepted."""
    return [kind(v) for v in (bounds.ge, bounds.le) if v is not None]


OUT_OF_RANGE = [
    (key, value, f.metadata["range"])
    for key, kind, f in FIELDS
    if "range" in f.metadata
    for value in _outside(kind, f.metadata["range"])
]


def test_every_numeric_field_declares_a_range():
    assert len(FIELDS) > 60, f"the walk found only {len(FIELDS)} numeric fields"
    missing = [key for key, _, f in FIELDS if "range" not in f.metadata]
    assert not missing, f"numeric config fields without a declared range (_f(..., ge=/gt=/le=/lt=)): {missing}"
    assert len(OUT_OF_RANGE) >= len(FIELDS), "some field has no finite limit to test"


@pytest.mark.parametrize(("key", "value", "bounds"), OUT_OF_RANGE, ids=[f"{k}={v}" for k, v, _ in OUT_OF_RANGE])
def test_a_value_outside_the_range_is_refused_naming_key_value_and_range(key, value, bounds):
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"{key}={value}"])
    message = str(err.value)
    assert "\n" not in message
    assert f"{key}={value!r} is out of range" in message
    assert f"allowed: {bounds}" in message


@pytest.mark.parametrize(("key", "kind", "field"), FIELDS, ids=[k for k, _, _ in FIELDS])
def test_defaults_and_inclusive_limits_are_accepted(key, kind, field):
    bounds = field.metadata["range"]
    for value in _edges(kind, bounds):
        config = RunConfig()
        *path, name = key.split(".")
        node = config
        for part in path:
            node = getattr(node, part)
        setattr(node, name, value)
        check_ranges(config)
    check_ranges(RunConfig())


@pytest.mark.parametrize("override", ["trainer.lr=.nan", "trainer.max_grad_norm=.inf", "rollout.temperature=-.inf"])
def test_non_finite_numbers_are_refused(override):
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"^{key}=.* is out of range"):
        load_config(None, [override])


def test_values_from_a_yaml_file_are_checked_too(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("trainer:\n  micro_batch_prompts: 0\n")
    with pytest.raises(ConfigError, match=r"trainer.micro_batch_prompts=0 is out of range; allowed: >= 1"):
        load_config(path)


def test_group_of_one_says_why():
    with pytest.raises(ConfigError, match=r"rollout.num_generations=1 .*>= 2 .*zero gradients"):
        load_config(None, ["rollout.num_generations=1"])


@pytest.mark.parametrize(
    ("bounds", "text", "inside", "outside"),
    [
        (Range(ge=1), ">= 1", [1, 10**9], [0, -1]),
        (Range(gt=0), "> 0", [1e-12], [0, -1e-12]),
        (Range(ge=0, le=1), "[0, 1]", [0, 0.5, 1], [-0.01, 1.01]),
        (Range(gt=0, le=1), "(0, 1]", [1e-9, 1], [0, 1.5]),
        (Range(ge=0, lt=1), "[0, 1)", [0, 0.99], [1, -1]),
    ],
)
def test_range_text_and_membership(bounds, text, inside, outside):
    assert str(bounds) == text
    assert all(v in bounds for v in inside)
    assert not any(v in bounds for v in outside)
    assert math.nan not in bounds and math.inf not in bounds


def test_describe_shows_the_range():
    assert any(line.startswith("trainer.steps = 100  # ") and line.endswith("(allowed: >= 1)") for line in describe())


def test_output_dir_naming_a_file_is_refused(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("x")
    for output_dir in (file, file / "run"):
        with pytest.raises(ConfigError, match=rf"output_dir={output_dir}: {file} is a file, not a folder"):
            load_config(None, [f"output_dir={output_dir}"])
    assert load_config(None, [f"output_dir={tmp_path}"]).output_dir == str(tmp_path)
    assert load_config(None, [f"output_dir={tmp_path / 'new' / 'run'}"])
