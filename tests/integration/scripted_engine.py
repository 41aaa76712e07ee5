"""A rollout engine that answers from scripts, for tests of multi-turn rollouts and their training.

Each rollout row follows one script: a list of model turns. A prompt that holds no script's first turn
gets its n rows from ``scripts[i][0..n-1]`` (i = its place in the call); a continued conversation is
recognised by the text of its first turn (so first turns must differ between rows) and gets that script's
next turn (the last one again once the script is used up).
Token ids are the tokenizer's encoding of the text plus ``<|im_end|>``, so training sees exactly these ids.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vlm_rl.rollout.base import Rollouts, SamplingParams


class ScriptedEngine:
    def __init__(self, adapter, scripts: Sequence[Sequence[Sequence[str]]]) -> None:
        self.adapter = adapter
        self.scripts = scripts
        self.calls: list[int] = []

    def sync_weights(self, policy) -> None:
        pass

    def generate(self, prompts, params: SamplingParams, *, streamer=None) -> Rollouts:
        self.calls.append(len(prompts))
        texts = []
        for i, prompt in enumerate(prompts):
            conversation = self.adapter.tokenizer.decode(prompt.input_ids, skip_special_tokens=False)
            script = next((s for group in self.scripts for s in group if s[0] in conversation), None)
            if script is None:  # a first turn: the n rows of prompt i follow scripts[i][0..n-1]
                texts.extend(self.scripts[i % len(self.scripts)][k][0] for k in range(params.n))
            else:  # every earlier turn added one "<|im_start|>assistant" after the prompt's own
                turn = conversation.count("<|im_start|>assistant") - 1
                texts.append(script[min(turn, len(script) - 1)])
        end = self.adapter.tokenizer.convert_tokens_to_ids("<|im_end|>")
        ids = [self.adapter.tokenizer(t, add_special_tokens=False)["input_ids"] + [end] for t in texts]
        group_ids = torch.arange(len(prompts)).repeat_interleave(params.n)
        return Rollouts(ids, texts, [False] * len(ids), group_ids)
