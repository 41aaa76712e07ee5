"""Selective sample replay in the GRPO loop: vanished groups are replaced by replayed rollouts that
keep their advantage and rollout-time log-probs; the buffer survives a resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vlm_rl.training.grpo import GRPOTrainer
from vlm_rl.training.replay import SelectiveReplay
from vlm_rl.training.replay import REPLAY_FILE

from overrides import with_overrides as _with  # tests/integration is on sys.path under pytest

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow


@pytest.fixture
def replay_config(run_config, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    return _with(
        run_config,
        [
            "reward.custom={probe: 'rewards_for_tests:constant_for_even_ids'}",  # even records: all rewards equal
            "reward.weights={accuracy: 0.0, probe: 1.0}",
            "algo.replay.enabled=true",
            "trainer.prompts_per_step=4",
            "trainer.steps=3",
            "trainer.save_every=1",
            f"output_dir={tmp_path / 'replay'}",
        ],
    )


def test_vanished_groups_are_replaced_by_replayed_rollouts(replay_config):
    trainer = GRPOTrainer(replay_config)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    rows = [json.loads(line) for line in (Path(replay_config.output_dir) / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        assert {"replay/effective_ratio", "replay/replayed_fraction", "replay/buffer_size", "replay/added"} <= set(row)
    assert rows[0]["replay/replayed_fraction"] == 0.0, "nothing to replay before the first update"
    assert rows[0]["replay/added"] == rows[0]["replay/effective_ratio"] * 4 * replay_config.rollout.num_generations
    assert any(r["replay/replayed_fraction"] > 0 for r in rows[1:]), "even records vanish and get replaced"
    assert len(trainer.method(SelectiveReplay).buffer) == rows[-1]["replay/buffer_size"] > 0
    assert any(not torch.equal(p.detach(), before[n]) for n, p in trainer.model.named_parameters() if p.requires_grad)
    assert all(item.advantage != 0 for item in trainer.method(SelectiveReplay).buffer.sample(8, torch.Generator().manual_seed(0)))

    resumed = GRPOTrainer(_with(replay_config, ["trainer.resume=auto"]))
    assert resumed.start_step == 3
    assert resumed.method(SelectiveReplay).buffer.state_dict() == trainer.method(SelectiveReplay).buffer.state_dict()
    assert torch.equal(resumed.method(SelectiveReplay).generator.get_state(), trainer.method(SelectiveReplay).generator.get_state())
    assert (Path(replay_config.output_dir) / "checkpoints" / "step_00000003" / REPLAY_FILE).is_file()


def test_replayed_parts_carry_stored_tokens_advantages_and_log_probs(replay_config):
    trainer = GRPOTrainer(_with(replay_config, ["trainer.steps=1"]))
    trainer.train()
    assert len(trainer.method(SelectiveReplay).buffer) > 0
    parts = trainer.method(SelectiveReplay).parts(5, trainer.encoder, rows_per_part=4)
    assert [len(p.advantages) for p in parts] == [4, 1]
    drawn = trainer.method(SelectiveReplay).buffer.state_dict()["items"]
    for part in parts:
        assert part.rows is None and part.old_logps is not None
        for row in range(len(part.advantages)):
            n = int(part.batch.completion_mask[row].sum())
            ids = part.batch.completion_ids[row, :n].tolist()
            match = [item for item in drawn if item["completion_ids"] == ids and item["advantage"] == float(part.advantages[row])]
            assert match, "every replayed row is a stored rollout"
            torch.testing.assert_close(part.old_logps[row, :n], torch.tensor(match[0]["old_logps"]))
            assert torch.all(part.old_logps[row, n:] == 0)
