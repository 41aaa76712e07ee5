"""A Qwen2-VL checkpoint goes through the same adapter, trainer and evaluation as Qwen2.5-VL."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vlm_rl.config import load_config
from vlm_rl.eval.runner import evaluate
from vlm_rl.rollout import HFRolloutEngine
from vlm_rl.models.loading import load_adapter, load_model, vision_tower
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.models.tiny import build_tiny_model
from vlm_rl.records import load_records
from vlm_rl.training.grpo import GRPOTrainer

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


def test_qwen2_vl_trains_and_evaluates(synthetic_data, tmp_path, monkeypatch, repo_root):
    monkeypatch.syspath_prepend(str(HERE))
    model_dir = build_tiny_model(tmp_path / "qwen2vl", family="qwen2_vl", seed=1)
    config = load_config(
        repo_root / "configs" / "quickstart_grpo.yaml",
        [
            f"model.path={model_dir}",
            f"data.train_files=[{synthetic_data.train_path}]",
            f"output_dir={tmp_path / 'run'}",
            "trainer.steps=1",
            "trainer.prompts_per_step=2",
            "trainer.micro_batch_prompts=2",
            "trainer.lr=1e-3",
            "rollout.num_generations=4",
            "rollout.max_new_tokens=8",
            "reward.custom={length: 'rewards_for_tests:text_length'}",
            "reward.weights={accuracy: 0.0, length: 1.0}",
        ],
    )
    trainer = GRPOTrainer(config)
    assert trainer.adapter.model_type == "qwen2_vl"
    assert type(trainer.policy).__name__ == "Qwen2VLForConditionalGeneration"
    visual_before = [p.detach().clone() for p in vision_tower(trainer.model).parameters()]
    final = trainer.train()
    assert any(not torch.equal(a, b) for a, b in zip(visual_before, vision_tower(trainer.model).parameters()))

    adapter = load_adapter(str(final))
    model = load_model(load_config(final / "vlm_rl.yaml", [f"model.path={final}"]).model, trainable=False)
    samples = load_records([str(synthetic_data.test_path)], None, limit=4)
    report = evaluate(HFRolloutEngine(model, adapter), PromptEncoder(adapter, config.data), samples, config.eval)
    assert report.n == 4 and len(report.results) == 4
