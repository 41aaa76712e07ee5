"""The config tree: YAML + dotted overrides, validation with messages that name the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from vlm_rl.config import ConfigError, RunConfig, describe, load_config, parse_override

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_overrides_reach_nested_fields_and_keep_types():
    config = load_config(None, ["algo.beta=0.04", "trainer.steps=20", "data.video.fps=null", "data.video.nframes=8"])
    assert config.algo.beta == 0.04 and config.trainer.steps == 20
    assert config.data.video.fps is None and config.data.video.nframes == 8
    assert isinstance(load_config(None, ["trainer.lr=1"]).trainer.lr, float)
    assert load_config(None, ["trainer.lr=1e-3"]).trainer.lr == pytest.approx(1e-3)


def test_lists_and_mappings_parse_as_yaml():
    config = load_config(None, ["data.train_files=[a.json, b.jsonl]", "reward.weights={accuracy: 1, format: 0.5}"])
    assert config.data.train_files == ["a.json", "b.jsonl"]
    assert config.reward.weights == {"accuracy": 1.0, "format": 0.5}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("algo.bta=1", "unknown config key 'algo.bta'"),
        ("trainer.steps=abc", "trainer.steps: expected an integer"),
        ("trainer.steps=1.5", "trainer.steps: expected an integer"),
        ("model.freeze_vision=3", "model.freeze_vision: expected true or false"),
        ("data.video.reader=torchvision", "data.video.reader: 'torchvision' is not one of"),
        ("trainer.lr=fast", "trainer.lr: expected a number"),
        ("nonsense=1", "unknown config key 'nonsense'"),
        ("algo.advantage=ppo", "algo.advantage: 'ppo' is not one of"),
    ],
)
def test_bad_keys_and_types_are_refused_with_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(None, [override])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.video.nframes=8"], "fps and data.video.nframes are exclusive"),
        (["trainer.prompts_per_step=3", "trainer.micro_batch_prompts=2"], "multiple of"),
        (["algo.advantage=ppo"], "algo.advantage: 'ppo' is not one of"),
        (["algo.token_weighting=tw"], r"algo.token_weighting: 'tw' is not one of \['none', 'tw_grpo'\]"),
        (["algo.token_weighting=tw_grpo", "algo.tw_grpo.alpha=0.5"], r"algo.tw_grpo.alpha=0.5 is out of range; allowed: >= 1"),
        (["algo.clip_ratio_c=1.0"], r"algo.clip_ratio_c=1.0 is out of range; allowed: > 1"),
        (["algo.scale_by_std=false"], "unknown config key 'algo.scale_by_std'"),
        (["algo.beta=-1"], r"algo.beta=-1.0 is out of range; allowed: >= 0"),
        (["algo.policy_loss=ppo"], "algo.policy_loss: 'ppo' is not one of"),
        (["algo.policy_loss=reg_grpo", "algo.token_weighting=tw_grpo"], "no token weighting"),
        (["algo.policy_loss=reg_grpo", "algo.mask_truncated=true"], "no overlong masking"),
        (["algo.policy_loss=reg_grpo", "algo.reg_grpo.onpolicy_eps=0"], r"onpolicy_eps=0.0 is out of range; allowed: > 0 \(.*on-policy"),
        (["algo.care.enabled=true", "reward.weights={format: 1.0}"], "needs the 'accuracy' reward"),
        (["algo.temporal.enabled=true", "reward.weights={format: 1.0}"], "temporal.enabled needs the 'accuracy'"),
        (["algo.care.enabled=true", "algo.care.ema_decay=1.5"], r"ema_decay=1.5 is out of range; allowed: \[0, 1\]"),
        (["algo.care.enabled=true", "algo.care.ema_every=0"], r"ema_every=0 is out of range; allowed: >= 1"),
        (["algo.rethink.min_new_tokens=50", "algo.rethink.max_new_tokens=50"], "min_new_tokens must be smaller"),
        (["data.video.min_frames=8", "data.video.max_frames=4"], r"min_frames \(8\) is larger than data.video.max_frames \(4\)"),
        (["data.image.min_pixels=1000", "data.image.max_pixels=999"], "data.image.min_pixels is larger"),
    ],
)
def test_incompatible_combinations_say_what_to_change(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  stpes: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'trainer.stpes'"):
        load_config(bad)


def test_override_syntax_error():
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("trainer.steps")


def test_every_field_has_help_and_shipped_configs_load():
    def walk(cls):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"
            default = getattr(cls(), f.name)
            if dataclasses.is_dataclass(default):
                walk(type(default))

    walk(RunConfig)
    assert any(line.startswith("algo.beta = 0.0  # ") for line in describe())
    for path in sorted(CONFIGS.glob("*.yaml")):
        load_config(path)
