"""SFT: the loss covers exactly the assistant turn and goes down on a small set."""

from __future__ import annotations

import json

import pytest

from data_pipelines.prompts import sft_target
from vlm_rl.config import load_config
from vlm_rl.training.sft import SFTTrainer

pytestmark = pytest.mark.slow


def test_sft_target_is_the_assistant_turn_and_loss_falls(tiny_model_dir, synthetic_data, tmp_path, repo_root):
    config = load_config(
        repo_root / "configs" / "quickstart_sft.yaml",
        [
            f"model.path={tiny_model_dir}",
            f"data.train_files=[{synthetic_data.train_path}]",
            "data.limit=8",
            f"output_dir={tmp_path / 'sft'}",
            "trainer.steps=40",
            "trainer.prompts_per_step=8",
            "trainer.micro_batch_prompts=4",
            "trainer.lr=2e-3",
            "trainer.log_every=1",
        ],
    )
    trainer = SFTTrainer(config)
    sample = trainer.train_samples[0]
    ids, _ = trainer.target(sample)
    tokenizer = trainer.adapter.tokenizer
    assert tokenizer.decode(ids) == sft_target(sample) + "<|im_end|>"
    assert sft_target(sample).startswith("<think>") and sft_target(sample).endswith("</answer>")
    final = trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 40
    assert losses[-1] < 0.3 * losses[0], losses
    assert rows[0]["tokens"] == sum(len(trainer.target(s)[0]) for s in trainer.train_samples[:8])
    assert (final / "model.safetensors").is_file() and (final / "vlm_rl.yaml").is_file()
    assert json.loads((final / "train_summary.json").read_text())["steps"] == 40
