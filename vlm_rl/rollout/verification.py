"""GRPO-CSV's verification pass (TimeSearch-R, arXiv 2511.05489): answer again from the retrieved frames alone.

For each finished rollout a two-turn conversation is built: the verification system prompt, then a user turn
with every item of the rollout's tool results in order (timestamp texts and frames, the closing "Here are
selected frames." texts left out) and the bare question. The preview video, the rollout's thoughts and its
answer are not shown. The current policy answers it once, without gradient; a rollout that retrieved no frame
is answered "I don't know" without generation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from data_pipelines.schema import Sample
from data_pipelines.search_prompt import I_DONT_KNOW, VERIFY_SYSTEM_PROMPT, verify_question
from vlm_rl.models.adapter import PromptInputs, QwenVLAdapter
from vlm_rl.rollout.base import RolloutEngine, SamplingParams
from vlm_rl.rollout.frame_search.tool import RESULT_HEADER
from vlm_rl.rollout.turns import Message, Trajectory


def verification_messages(trajectory: Trajectory, sample: Sample) -> list[Message] | None:
    """The verification conversation of one rollout; None when its tool results hold no image."""
    items = [
        item
        for message in trajectory.messages
        if message["role"] == "tool"
        for item in message["content"]
        if not (item.get("type") == "text" and item["text"].startswith(RESULT_HEADER))
    ]
    if not any(item.get("type") == "image" for item in items):
        return None
    return [
        {"role": "system", "content": [{"type": "text", "text": VERIFY_SYSTEM_PROMPT}]},
        {"role": "user", "content": [*items, {"type": "text", "text": verify_question(sample)}]},
    ]


def verify(
    engine: RolloutEngine,
    adapter: QwenVLAdapter,
    trajectories: Sequence[Trajectory],
    samples: Sequence[Sample],
    params: SamplingParams,
) -> list[str]:
    """The verifier's answer text for each rollout (``samples[i]`` is rollout i's sample)."""
    answers = [I_DONT_KNOW] * len(trajectories)
    prompts: list[PromptInputs] = []
    rows: list[int] = []
    for index, (trajectory, sample) in enumerate(zip(trajectories, samples)):
        messages = verification_messages(trajectory, sample)
        if messages is None:
            continue
        images = [item["image"] for item in messages[1]["content"] if item.get("type") == "image"]
        prompts.append(adapter.encode(adapter.render(messages, add_generation_prompt=True), images=images))
        rows.append(index)
    if prompts:
        out = engine.generate(prompts, dataclasses.replace(params, n=1))
        for index, text in zip(rows, out.texts):
            answers[index] = text
    return answers
