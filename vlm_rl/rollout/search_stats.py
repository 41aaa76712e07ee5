"""What a batch of frame-search rollouts did: answers, tool calls, valid calls, frames retrieved."""

from __future__ import annotations

from collections.abc import Sequence

from vlm_rl.rollout.turns import Outcome, Status, Trajectory


def retrieved_frames(trajectory: Trajectory) -> int:
    """Images the rollout's tool turns returned (a placeholder result included)."""
    return sum(
        item.get("type") == "image"
        for message in trajectory.messages
        if message["role"] == "tool"
        for item in message["content"]
    )


def search_stats(trajectories: Sequence[Trajectory]) -> dict[str, float]:
    """Per-rollout means: ``answered`` (ended with an answer), ``tool_calls`` (calls that ran),
    ``invalid_calls`` (calls answered with the parse-error message), ``frames`` retrieved, ``turns``, and
    ``valid_call_rate`` = calls that ran / calls made (1 when no call was made)."""
    n = max(len(trajectories), 1)
    calls = sum(r.outcome is Outcome.TOOL for t in trajectories for r in t.results)
    invalid = sum(r.outcome is Outcome.PARSE_ERROR for t in trajectories for r in t.results)
    return {
        "answered": sum(t.status is Status.ANSWERED for t in trajectories) / n,
        "tool_calls": calls / n,
        "invalid_calls": invalid / n,
        "valid_call_rate": calls / (calls + invalid) if calls + invalid else 1.0,
        "frames": sum(retrieved_frames(t) for t in trajectories) / n,
        "turns": sum(t.turns for t in trajectories) / n,
    }
