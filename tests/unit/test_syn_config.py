"""The Syn-GRPO config section: its defaults load, and a run it cannot serve is refused naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlm_rl.config import ConfigError, load_config

SYN_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "syn_grpo.yaml"


def test_the_defaults_load_with_syn_off():
    syn = load_config(None, []).algo.syn
    assert not syn.enabled
    assert (syn.mix, syn.baseline_momentum, syn.wait_s, syn.diversity_reward) == (0.5, 0.9, 0.0, "accuracy")


def test_the_shipped_syn_config_loads():
    config = load_config(SYN_CONFIG, [])
    assert config.algo.syn.enabled
    assert config.algo.syn.diversity_reward in config.reward.weights


def test_a_diversity_reward_outside_reward_weights_is_refused():
    with pytest.raises(ConfigError, match=r"algo\.syn\.diversity_reward='iou' is not in reward\.weights"):
        load_config(SYN_CONFIG, ["algo.syn.diversity_reward=iou"])


def test_a_diversity_reward_with_weight_zero_is_accepted():
    overrides = ["algo.syn.diversity_reward=iou", "reward.weights={accuracy: 1, format: 0, iou: 0}"]
    config = load_config(SYN_CONFIG, overrides)
    assert config.algo.syn.diversity_reward == "iou"


def test_the_diversity_reward_is_not_checked_while_syn_is_off():
    assert load_config(None, ["algo.syn.diversity_reward=iou"]).algo.syn.diversity_reward == "iou"


def test_syn_cannot_run_with_replay():
    with pytest.raises(ConfigError, match=r"algo\.syn\.enabled cannot be combined with algo\.replay\.enabled"):
        load_config(SYN_CONFIG, ["algo.replay.enabled=true"])


def test_syn_cannot_run_with_search():
    with pytest.raises(ConfigError, match=r"algo\.syn\.enabled cannot be combined with search\.enabled"):
        load_config(SYN_CONFIG, ["search.enabled=true", "data.prompt_template=timesearch"])


def test_replay_alone_is_accepted():
    assert load_config(SYN_CONFIG, ["algo.syn.enabled=false", "algo.replay.enabled=true"]).algo.replay.enabled


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("algo.syn.mix=1.5", r"algo\.syn\.mix=1\.5 is out of range; allowed: \[0, 1\]"),
        ("algo.syn.baseline_momentum=1.0", r"algo\.syn\.baseline_momentum=1\.0 is out of range; allowed: \[0, 1\)"),
        ("algo.syn.wait_s=-1", r"algo\.syn\.wait_s=-1\.0 is out of range; allowed: \[0, 600\]"),
        ("algo.syn.reward_scale=0", r"algo\.syn\.reward_scale=0\.0 is out of range"),
    ],
)
def test_out_of_range_values_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(SYN_CONFIG, [override])


def test_the_syn_grpo_recipe_is_the_rec_grpo_recipe_plus_algo_syn():
    import dataclasses

    from vlm_rl.config import SynConfig, to_dict

    syn, plain = (load_config(SYN_CONFIG.parent / f"{name}.yaml", []) for name in ("syn_grpo", "rec_grpo"))
    assert syn.algo.syn.enabled and not plain.algo.syn.enabled
    syn = dataclasses.replace(syn, output_dir=plain.output_dir, algo=dataclasses.replace(syn.algo, syn=SynConfig()))
    assert to_dict(syn) == to_dict(plain), "the comparison's arms differ only in algo.syn"
