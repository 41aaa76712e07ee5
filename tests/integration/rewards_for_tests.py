"""A reward that varies between completions of an untrained model, so advantages are non-zero."""

from vlm_rl.rewards import RewardContext


def text_length(ctx: RewardContext) -> float:
    return len(ctx.completion) / 50.0


def constant_for_even_ids(ctx: RewardContext) -> float:
    """All completions of an even-numbered record score the same; odd records vary with length."""
    return 0.0 if int(ctx.sample_id) % 2 == 0 else len(ctx.completion) / 50.0


def one_for_even_ids(ctx: RewardContext) -> float:
    """All completions of an even-numbered record score 1 (easier than the rest); odd records vary with length."""
    return 1.0 if int(ctx.sample_id) % 2 == 0 else len(ctx.completion) / 50.0
