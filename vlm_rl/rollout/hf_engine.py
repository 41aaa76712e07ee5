"""Rollouts with transformers' `generate` (CPU or GPU, always available)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vlm_rl.models.adapter import PromptInputs, QwenVLAdapter
from vlm_rl.rollout.base import Rollouts, SamplingParams


class HFRolloutEngine:
    """Samples with `model.generate`; vision placeholder tokens can never be generated.

    With `shared_prefill`, each prompt (text and frames) is run once and its KV cache repeated for
    its n samples, instead of `generate` encoding it n times; the prompts of a call (up to
    `max_rows_per_call` rows) are prefilled together, left-padded, and generated together. The
    numbers are the same to float rounding: greedy decoding gives the same tokens, and from the same
    seed sampling draws the same tokens too (same rows, same order), unless rounding tips a draw.
    """

    def __init__(self, model, adapter: QwenVLAdapter, *, max_rows_per_call: int = 64, shared_prefill: bool = False) -> None:
        self.model = model
        self.adapter = adapter
        self.max_rows_per_call = max_rows_per_call
        self.shared_prefill = shared_prefill

    def sync_weights(self, policy: torch.nn.Module) -> None:
        """Generate with `policy` from now on: the module itself, not a copy, so its later updates show."""
        self.model = policy

    @torch.no_grad()
    def generate(self, prompts: Sequence[PromptInputs], params: SamplingParams, *, streamer=None) -> Rollouts:
        """Sample `params.n` completions per prompt.

        A transformers `streamer` (for one prompt with n = 1) receives the tokens as they are generated.
        """
        if streamer is not None and len(prompts) * params.n != 1:
            raise ValueError(f"a streamer needs a single completion, got {len(prompts)} prompts x n={params.n}")
        was_training = self.model.training
        self.model.eval()
        try:
            per_call = max(1, self.max_rows_per_call // params.n)
            generate = self._generate_shared if self.shared_prefill else self._generate_chunk
            completions: list[list[int]] = []
            truncated: list[bool] = []
            for start in range(0, len(prompts), per_call):
                ids, cut = generate(prompts[start : start + per_call], params, streamer)
                completions.extend(ids)
                truncated.extend(cut)
        finally:
            self.model.train(was_training)
        texts = self.adapter.tokenizer.batch_decode(completions, skip_special_tokens=True)
        group_ids = torch.arange(len(prompts)).repeat_interleave(params.n)
        return Rollouts(completions, texts, truncated, group_ids)

    def _generate_chunk(
        self, prompts: Sequence[PromptInputs], params: SamplingParams, streamer=None
    ) -> tuple[list[list[int]], list[bool]]:
        batch = self.adapter.collate(prompts, repeats=params.n)
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in batch.model_inputs.items()}
        out = self.model.generate(**inputs, **self._generate_kwargs(params), streamer=streamer)
        return self._split(out[:, batch.prompt_width :].tolist())

    def _generate_shared(
        self, prompts: Sequence[PromptInputs], params: SamplingParams, streamer=None
    ) -> tuple[list[list[int]], list[bool]]:
        """The prompts, prefilled once together by the adapter (each row's cache repeated n times) for `generate`
        to continue."""
        inputs = self.adapter.shared_generation_inputs(self.model, prompts, params.n)
        out = self.model.generate(**inputs, **self._generate_kwargs(params), streamer=streamer)
        return self._split(out[:, inputs["input_ids"].shape[1] :].tolist())

    def _generate_kwargs(self, params: SamplingParams) -> dict:
        sampling = (
            {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k or None}
            if params.temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        return {
            **sampling,
            "max_new_tokens": params.max_new_tokens,
            "suppress_tokens": self.adapter.blocked_token_ids,
            "eos_token_id": self.adapter.eos_token_ids,
            "pad_token_id": self.adapter.pad_token_id,
        }

    def _split(self, generated: list[list[int]]) -> tuple[list[list[int]], list[bool]]:
        """Each row up to and including its first EOS, and whether it had none (truncated)."""
        eos = set(self.adapter.eos_token_ids)
        completions, truncated = [], []
        for row in generated:
            end = next((i for i, t in enumerate(row) if t in eos), None)
            completions.append(row if end is None else row[: end + 1])
            truncated.append(end is None)
        return completions, truncated
