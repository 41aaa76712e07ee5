"""Supervised fine-tuning: masked next-token loss on the assistant turn, same data and config."""

from __future__ import annotations

from data_pipelines.prompts import sft_target
from vlm_rl.config import RunConfig
from vlm_rl.models.logprobs import completion_logprobs
from vlm_rl.training.base import Trainer


class SFTTrainer(Trainer):
    """Each step takes `trainer.prompts_per_step` records; the target is ``process + "\\n" + solution``."""

    name = "sft"

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        self.end_of_turn = self.adapter.tokenizer.convert_tokens_to_ids("<|im_end|>")

    def target_ids(self, sample) -> list[int]:
        ids = self.adapter.tokenizer(sft_target(sample), add_special_tokens=False)["input_ids"]
        return [*ids, self.end_of_turn]

    def step(self, step: int) -> dict[str, float]:
        cfg = self.config.trainer
        samples = self.sampler.take(cfg.prompts_per_step)
        targets = [self.target_ids(s) for s in samples]
        total_tokens = sum(len(t) for t in targets)
        loss_sum = 0.0
        starts = range(0, len(samples), cfg.micro_batch_prompts)
        for start in starts:
            chunk = samples[start : start + cfg.micro_batch_prompts]
            prompts = [self.encoder.encode(s) for s in chunk]
            batch = self.adapter.collate(prompts, 1, targets[start : start + cfg.micro_batch_prompts])
            with self.micro_batch(last=start == starts[-1]):
                logp = completion_logprobs(self.model, batch)[0]
                mask = batch.completion_mask.to(logp.device)
                loss = -(logp * mask).sum() / total_tokens
                self.accelerator.backward(loss)
            loss_sum += loss.item()
        grad_norm = self.clip_and_step()
        return {"loss": loss_sum, "grad_norm": grad_norm, "tokens": float(total_tokens)}
