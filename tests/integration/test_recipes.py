"""Every shipped recipe trains the tiny model end to end: all trainable parameters move and the
algorithm's own metrics reach metrics.jsonl."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from vlm_rl.config import ConfigError, load_config, read_overrides_file
from vlm_rl.training.grpo import GRPOTrainer
from tiny_run import TINY_RUN

HERE = Path(__file__).parent
REPO = HERE.parents[1]
pytestmark = pytest.mark.slow

# What makes a 7B recipe fit the tiny model on a CPU (shared with scripts/compare_algorithms.sh), plus this
# test's reward: one that varies between untrained completions, loaded from its file.
TINY_CPU = read_overrides_file(REPO / "configs" / "tiny_cpu.overrides")
# the frame-search recipe's own CPU overrides (scripts/timesearch_needle.sh)
NEEDLE_CPU = read_overrides_file(REPO / "configs" / "timesearch_needle.overrides")
LENGTH_REWARD = [
    f"reward.custom={{length: '{HERE / 'rewards_for_tests.py'}:text_length'}}",
    "reward.weights={accuracy: 0.0, length: 1.0}",
]
# the recipes scripts/compare_algorithms.sh can run: those with a scripts/train_<name>.sh
RECIPES = sorted(p.stem for p in (REPO / "configs").glob("*.yaml") if (REPO / "scripts" / f"train_{p.stem}.sh").exists())

COMMON = {"loss", "entropy", "advantage_std", "zero_std_groups", "completion_length", "grad_norm", "reward/length", "skip_ratio"}

# recipe, extra overrides, metrics the algorithm itself must log
ALGORITHMS = {
    "grpo": ("grpo", [], {"kl", "clip_fraction", "clip_low_fraction", "clip_high_fraction"}),
    "dr_grpo": (
        "grpo",
        ["algo.advantage=dr_grpo", "algo.aggregation=seq_mean_token_sum_norm"],
        {"kl", "clip_fraction"},
    ),
    "gspo": ("grpo", ["algo.policy_loss=gspo", "algo.clip_low=3e-4", "algo.clip_high=4e-4"], {"clip_fraction"}),
    "tw_grpo": ("tw_grpo", [], {"token_weight_mean", "token_weight_max"}),
    # overlong masking is off here: untrained completions never end within 8 tokens, so all would be
    # masked (tests/integration/test_dapo_options.py covers the masking)
    "dapo": ("dapo", ["algo.mask_truncated=false"], {"dropped_groups", "refill_rounds", "clip_high_fraction"}),
    "reg_grpo": ("reg_grpo", [], {"kl", "reg_grpo/regression_loss", "reg_grpo/log_ratio_std", "reg_grpo/degenerate_group_fraction"}),
    "grpo_care": ("grpo_care", [], {"care/bonus_rate", "care/answer_span_rate", "reward/care_bonus"}),
    "vl_rethinker": (
        "vl_rethinker",
        [],
        {"replay/effective_ratio", "replay/replayed_fraction", "replay/buffer_size", "rethink/attempt_rate", "rethink/kept_rate"},
    ),
    "deepvideo_r1": ("deepvideo_r1", [], {"reg_grpo/regression_loss", "difficulty/hinted_rate", "difficulty/noised_rate"}),
    "ton_grpo": ("ton_grpo", [], {"kl", "skip_ratio"}),
    "timesearch_r": (
        "timesearch_r",
        [*NEEDLE_CPU, "data.video.nframes=4", "reward.weights={search_accuracy: 0.0, length: 1.0}", "search.max_turn_tokens=8", "search.verify_max_tokens=4"],
        {"kl", "reward/csv", "search/tool_calls", "search/frames", "search/csv_rate", "search/verifier_accuracy"},
    ),
    "t_grpo": (
        "t_grpo",
        [],
        {"temporal/bonus_rate", "temporal/ordered_accuracy", "temporal/shuffled_accuracy", "reward/temporal_bonus", "kl"},
    ),
}


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_recipe_trains_every_parameter_and_logs_its_metrics(algorithm, tiny_model_dir, synthetic_data, tmp_path):
    recipe, extra, own_metrics = ALGORITHMS[algorithm]
    config = load_config(
        REPO / "configs" / f"{recipe}.yaml",
        [
            f"model.path={tiny_model_dir}",
            f"data.train_files=[{synthetic_data.train_path}]",
            f"output_dir={tmp_path / 'run'}",
            *TINY_RUN,
            *TINY_CPU,
            *LENGTH_REWARD,
            *extra,
        ],
    )
    trainer = GRPOTrainer(config)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()

    unchanged = [n for n, p in trainer.model.named_parameters() if p.requires_grad and torch.equal(p.detach(), before[n])]
    assert before and not unchanged, f"{algorithm}: parameters not updated: {unchanged}"
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        missing = (COMMON | own_metrics) - set(row)
        assert not missing, f"{algorithm}: step {row['step']} did not log {sorted(missing)}"
        assert all(isinstance(v, (int, float)) and v == v for v in row.values()), f"{algorithm}: NaN in {row}"
    if algorithm == "reg_grpo":
        # the second update regresses against the rollout-time log-probs: the policy has moved
        assert all(r["reg_grpo/log_ratio_std"] > 0 and r["reg_grpo/degenerate_group_fraction"] == 0 for r in rows)
    if algorithm == "tw_grpo":
        assert all(1.0 <= r["token_weight_mean"] <= r["token_weight_max"] <= config.algo.tw_grpo.alpha + 1e-6 for r in rows), rows


@pytest.mark.parametrize("recipe", RECIPES)
def test_tiny_cpu_overrides_fit_every_recipe(recipe):
    search = recipe == "timesearch_r"
    config = load_config(REPO / "configs" / f"{recipe}.yaml", NEEDLE_CPU if search else TINY_CPU)
    video = config.data.video
    assert (config.model.dtype, video.fps, video.nframes, video.max_pixels) == ("float32", None, 8 if search else 4, 3136)
    assert config.search.enabled == search


def test_overrides_file_skips_comments_and_names_a_bad_line(tmp_path):
    path = tmp_path / "run.overrides"
    path.write_text("# a comment\n\n  model.dtype=float32  \nreward.weights={accuracy: 1.0}\n")
    assert read_overrides_file(path) == ["model.dtype=float32", "reward.weights={accuracy: 1.0}"]
    path.write_text("model.dtype=float32\ndata.limit\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}:2: 'data.limit' is not an override")):
        read_overrides_file(path)
    with pytest.raises(ConfigError, match="does not exist"):
        read_overrides_file(tmp_path / "missing.overrides")
