"""A reward that varies between completions of an untrained model, so advantages are non-zero."""

from vlm_rl.rewards import RewardContext


def text_length(ctx: RewardContext) -> float:
    return len(ctx.completion) / 50.0
