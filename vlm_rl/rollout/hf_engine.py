"""Rollouts with transformers' `generate` (CPU or GPU, always available)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vlm_rl.models.adapter import PromptInputs, QwenVLAdapter
from vlm_rl.rollout.base import Rollouts, SamplingParams


class HFRolloutEngine:
    """Samples with `model.generate`; vision placeholder tokens can never be generated."""

    def __init__(self, model, adapter: QwenVLAdapter, *, max_rows_per_call: int = 64) -> None:
        self.model = model
        self.adapter = adapter
        self.max_rows_per_call = max_rows_per_call

    @torch.no_grad()
    def generate(self, prompts: Sequence[PromptInputs], params: SamplingParams) -> Rollouts:
        was_training = self.model.training
        self.model.eval()
        try:
            per_call = max(1, self.max_rows_per_call // params.n)
            completions: list[list[int]] = []
            truncated: list[bool] = []
            for start in range(0, len(prompts), per_call):
                ids, cut = self._generate_chunk(prompts[start : start + per_call], params)
                completions.extend(ids)
                truncated.extend(cut)
        finally:
            self.model.train(was_training)
        texts = self.adapter.tokenizer.batch_decode(completions, skip_special_tokens=True)
        group_ids = torch.arange(len(prompts)).repeat_interleave(params.n)
        return Rollouts(completions, texts, truncated, group_ids)

    def _generate_chunk(self, prompts: Sequence[PromptInputs], params: SamplingParams) -> tuple[list[list[int]], list[bool]]:
        batch = self.adapter.collate(prompts, repeats=params.n)
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in batch.model_inputs.items()}
        sample = params.temperature > 0
        sampling = (
            {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k or None}
            if sample
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        out = self.model.generate(
            **inputs,
            **sampling,
            max_new_tokens=params.max_new_tokens,
            suppress_tokens=self.adapter.blocked_token_ids,
            eos_token_id=self.adapter.eos_token_ids,
            pad_token_id=self.adapter.pad_token_id,
        )
        generated = out[:, batch.prompt_width :].tolist()
        eos = set(self.adapter.eos_token_ids)
        completions, truncated = [], []
        for row in generated:
            end = next((i for i, t in enumerate(row) if t in eos), None)
            completions.append(row if end is None else row[: end + 1])
            truncated.append(end is None)
        return completions, truncated
