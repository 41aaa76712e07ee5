"""A group of completions of one prompt as GRPO sees it: rewards, advantages, and which answers agree."""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from data_pipelines.schema import Sample
from vlm_rl.demo.completion_view import CompletionView, view_completion
from vlm_rl.demo.model_runner import Completions, DemoModel

NO_ANSWER = "(no answer)"
_PALETTE = ("#2e7d32", "#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#5d4037", "#455a64")


@dataclass(frozen=True)
class ScoredCompletion:
    """One completion with its parts, its rewards (empty without a correct answer) and its agreement group."""

    title: str
    text: str
    view: CompletionView
    tokens: int | None
    truncated: bool
    cluster: int
    scores: dict[str, float] = field(default_factory=dict)
    reward: float | None = None
    advantage: float | None = None


def agreement_key(answer: str | None) -> str:
    """What two answers must share to agree: the answer text, case and spacing ignored."""
    if answer is None or not answer.strip():
        return NO_ANSWER
    return re.sub(r"\s+", " ", answer.strip()).casefold()


def agreement_groups(answers: Sequence[str | None]) -> tuple[list[int], list[tuple[str, int]]]:
    """Each answer's group number, and the groups as ``(answer, count)``, most common first (ties: first seen)."""
    keys = [agreement_key(a) for a in answers]
    counts = Counter(keys)
    order = sorted(counts, key=lambda k: (-counts[k], keys.index(k)))
    return [order.index(k) for k in keys], [(k, counts[k]) for k in order]


def score_completions(
    model: DemoModel, sample: Sample, completions: Completions, titles: Sequence[str] | None = None
) -> tuple[list[ScoredCompletion], list[tuple[str, int]]]:
    """Parts, agreement and (when the sample has an answer) the training rewards and group advantages."""
    views = [view_completion(t) for t in completions.texts]
    clusters, groups = agreement_groups([v.answer if v.answer_closed else None for v in views])
    titles = titles or [f"#{i + 1}" for i in range(len(views))]
    scored = []
    rewards = advantages = None
    if sample.answer:
        rewards, advantages = model.score(sample, completions.texts)
    for i, (text, view) in enumerate(zip(completions.texts, views)):
        extra = {}
        if rewards is not None:
            extra = {
                "scores": {name: float(rewards.scores[name][i]) for name in rewards.names},
                "reward": float(rewards.total[i]),
                "advantage": float(advantages[i]),
            }
        scored.append(
            ScoredCompletion(
                titles[i], text, view, completions.lengths[i], completions.truncated[i], clusters[i], **extra
            )
        )
    return scored, groups


def _block(label: str, text: str | None, closed: bool) -> str:
    if text is None:
        body = "<em>none</em>"
    else:
        body = html.escape(text) if text else "<em>empty</em>"
        if not closed:
            body += " <em>(not closed)</em>"
    return f'<div class="vr-part"><b>{label}</b><pre>{body}</pre></div>'


def render_card(item: ScoredCompletion) -> str:
    """One completion as an HTML card (all model text escaped)."""
    color = _PALETTE[item.cluster % len(_PALETTE)]
    badges = [] if item.tokens is None else [f"{item.tokens} tokens"]
    if item.truncated:
        badges.append("cut at max tokens")
    if item.view.skipped_thinking:
        badges.append("skipped thinking")
    if item.reward is not None:
        parts = ", ".join(f"{name} {value:g}" for name, value in item.scores.items())
        badges.append(f"reward {item.reward:g} ({parts})")
    if item.advantage is not None:
        badges.append(f"advantage {item.advantage:+.3f}")
    badge_html = "".join(f'<span class="vr-badge">{html.escape(b)}</span>' for b in badges)
    return (
        f'<div class="vr-card" style="border-top: 4px solid {color}">'
        f'<div class="vr-title">{html.escape(item.title)} <span class="vr-chip" style="background:{color}">'
        f"answer group {item.cluster + 1}</span></div>{badge_html}"
        f"{_block('think', item.view.think, item.view.think_closed)}"
        f"{_block('answer', item.view.answer, item.view.answer_closed)}</div>"
    )


def reward_mix(weights: Mapping[str, float]) -> str:
    """The weighted sum the total reward is, as HTML: ``1 × accuracy + 0 × format``."""
    return " + ".join(f"{weight:g} &times; {html.escape(name)}" for name, weight in weights.items())


def reward_notes(items: Sequence[ScoredCompletion], weights: Mapping[str, float]) -> list[str]:
    """The reward's make-up and the group's mean, or that equal rewards make every advantage 0; or how to get them."""
    rewards = [item.reward for item in items]
    if any(r is None for r in rewards):
        return ["Give the correct answer to see each completion's rewards and advantage."]
    notes = [
        f"Reward = {reward_mix(weights)} (the model's training rewards). "
        f"Mean reward {sum(rewards) / len(rewards):.3f}; advantages from the group's mean and std, as in training."
    ]
    if len(set(rewards)) == 1:
        notes.append("<b>All rewards are equal: every advantage is 0 and this group teaches nothing.</b>")
    return notes


def render_group(items: Sequence[ScoredCompletion], groups: Sequence[tuple[str, int]], notes: Sequence[str]) -> str:
    """The cards side by side under the answer groups and `notes` (HTML lines)."""
    agree = ", ".join(
        f'<span class="vr-chip" style="background:{_PALETTE[i % len(_PALETTE)]}">{i + 1}</span> '
        f"{html.escape(key)} &times;{count}"
        for i, (key, count) in enumerate(groups)
    )
    lines = "".join(f"<div>{line}</div>" for line in [f"Answer groups: {agree}", *notes])
    cards = "".join(render_card(item) for item in items)
    return f'<div class="vr-summary">{lines}</div><div class="vr-cards">{cards}</div>'
