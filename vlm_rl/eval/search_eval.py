"""Evaluation with frame search (TimeSearch-R): each record is answered by a multi-turn tool rollout.

The model sees the preview video and the search prompt, calls ``seek_video_frames`` as it likes and answers;
with ``search.csv`` the same model then answers again from the frames it retrieved alone (the verifier). An
item is scored by the search reward's single-answer rule: exactly one ``<answer>`` over all its turns is
scored with the evaluation's scorer, none or several score 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from data_pipelines.completion_format import answer_block
from data_pipelines.schema import Sample
from vlm_rl.algorithms.csv_reward import completeness_score
from vlm_rl.config import ConfigError, EvalConfig, SearchConfig
from vlm_rl.eval.runner import ItemScore, Scorer
from vlm_rl.models.adapter import PromptInputs, QwenVLAdapter
from vlm_rl.rewards.search import answers, search_answer_score, search_format
from vlm_rl.rollout import RolloutEngine, SamplingParams
from vlm_rl.rollout.search_stats import search_stats
from vlm_rl.rollout.turn_loop import TurnLoop
from vlm_rl.rollout.turns import PARSE_ERROR_TOOL, Trajectory
from vlm_rl.rollout.verification import verify
from vlm_rl.training.frame_search import SearchTools


@dataclass(frozen=True)
class SearchRollout:
    """One record's search rollout: its model turns joined by newlines, their token count (with each turn's
    end-of-turn and header tokens; tool turns not counted), whether a turn without an action hit the token
    limit, the conversation, and the verifier's answer (None without ``search.csv``)."""

    text: str
    length: int
    truncated: bool
    trajectory: Trajectory
    verifier_answer: str | None

    @property
    def turns(self) -> list[str]:
        return [result.turn_text for result in self.trajectory.results]


class SearchEval:
    """Runs the tool loop over an evaluation engine and turns each rollout into the item's ``search`` entry."""

    def __init__(self, config: SearchConfig, engine: RolloutEngine, adapter: QwenVLAdapter, cfg: EvalConfig, reader: str) -> None:
        self.config = config
        self.engine = engine
        self.adapter = adapter
        self.tools = SearchTools(config, reader)
        self.loop = TurnLoop(engine, adapter, max_turns=config.max_turns, max_turn_tokens=config.max_turn_tokens)
        self.verify_params = SamplingParams(
            n=1, max_new_tokens=config.verify_max_tokens, temperature=cfg.temperature, top_p=cfg.top_p
        )

    @property
    def settings(self) -> dict[str, Any]:
        """The search settings, recorded with the report and the resumable item log."""
        return asdict(self.config)

    def check(self, samples: Sequence[Sample]) -> None:
        """ConfigError naming the first record that is not a video (the tool searches a video's frames)."""
        for sample in samples:
            if sample.data_type != "video":
                raise ConfigError(
                    f"{sample.origin}: frame search evaluates video records only, this one has data_type "
                    f"{sample.data_type!r}; evaluate these records without --search / search.enabled"
                )

    def run(self, samples: Sequence[Sample], prompts: Sequence[PromptInputs], params: SamplingParams) -> list[SearchRollout]:
        """One search rollout per sample (``params.n`` is taken as 1), verified when ``search.csv`` is on."""
        out = self.loop.generate(prompts, self.tools.environments(samples), dataclasses.replace(params, n=1))
        verifier = (
            verify(self.engine, self.adapter, out.trajectories, samples, self.verify_params)
            if self.config.csv
            else [None] * len(samples)
        )
        return [
            SearchRollout(text, int(media.loss_mask.sum()), truncated, trajectory, answer)
            for text, media, truncated, trajectory, answer in zip(out.texts, out.media, out.truncated, out.trajectories, verifier)
        ]

    def entry(self, rollout: SearchRollout, sample: Sample, reward: float) -> dict[str, Any]:
        """The item's ``search`` entry; `reward` is the item's headline score (for the completeness term)."""
        stats = search_stats([rollout.trajectory])
        entry: dict[str, Any] = {
            "status": rollout.trajectory.status.value,
            "answered": bool(stats["answered"]),
            "turns": rollout.trajectory.turns,
            "tool_calls": int(stats["tool_calls"]),
            "invalid_calls": int(stats["invalid_calls"]),
            "frames": int(stats["frames"]),
            "search_format": search_format(rollout.turns),
            "answers": answers(rollout.turns),
            "texts": rollout.turns,
            "calls": _calls(rollout.trajectory),
        }
        if rollout.verifier_answer is not None:
            verifier = search_answer_score(rollout.verifier_answer, sample.answer, sample.problem_type)
            entry["verifier_answer"] = rollout.verifier_answer
            entry["verifier_score"] = verifier
            entry["verifier_correct"] = verifier == 1.0
            entry["csv"] = float(completeness_score(torch.tensor([reward]), torch.tensor([verifier]))[0])
        return entry

    def summary(self, results: Sequence[dict[str, Any]]) -> dict[str, float]:
        """Search numbers over every item (an item whose media failed counts as no call, no frame, wrong):
        tool calls, frames and turns per item, valid-call rate (calls that ran / calls made, 1 without
        calls), answered and search-format rates, and with ``search.csv`` the CSV rate (share of items with a
        completeness term above 0) and the verifier's accuracy."""
        entries = [r.get("search") or {} for r in results]
        n = max(len(entries), 1)

        def total(key: str) -> float:
            return float(sum(e.get(key, 0) for e in entries))

        calls, invalid = total("tool_calls"), total("invalid_calls")
        out = {
            "tool_calls": calls / n,
            "valid_call_rate": calls / (calls + invalid) if calls + invalid else 1.0,
            "frames": total("frames") / n,
            "turns": total("turns") / n,
            "answered": total("answered") / n,
            "format_rate": total("search_format") / n,
        }
        if self.config.csv:
            out["csv_rate"] = sum(e.get("csv", 0.0) > 0 for e in entries) / n
            out["verifier_accuracy"] = total("verifier_score") / n
        return out


def single_answer_score(turns: Sequence[str], sample: Sample, scorer: Scorer) -> ItemScore:
    """`scorer`'s verdict on the one answer of a search rollout; 0 when it gave no answer or several."""
    given = answers(turns)
    if len(given) == 1:
        return scorer(sample, answer_block(given[0]))
    detail = f"{len(given)} answers (a search item is scored only with exactly one)"
    if scorer.letter_rules:
        return ItemScore(0.0, 0.0, 0.0, "search", detail)
    return ItemScore(0.0, method="search", detail=detail)


SUMMARY_ROWS = (
    ("tool calls per item", "tool_calls", "{:.2f}"),
    ("valid-call rate", "valid_call_rate", "{:.1%}"),
    ("frames retrieved per item", "frames", "{:.1f}"),
    ("model turns per item", "turns", "{:.2f}"),
    ("answered rate", "answered", "{:.1%}"),
    ("search format rate", "format_rate", "{:.1%}"),
    ("CSV rate (answer and verifier right)", "csv_rate", "{:.1%}"),
    ("verifier accuracy (retrieved frames only)", "verifier_accuracy", "{:.1%}"),
)


def search_table(summary: dict[str, float]) -> str:
    """A Markdown table of a report's search summary (rows it lacks, such as CSV without ``search.csv``, left out)."""
    lines = ["| search | value |", "|---|---|"]
    lines += [f"| {title} | {fmt.format(summary[key])} |" for title, key, fmt in SUMMARY_ROWS if key in summary]
    return "\n".join(lines)


def search_line(summary: dict[str, float]) -> str:
    """The search summary in one line, for the command's output."""
    parts = [
        f"{summary['tool_calls']:.2f} tool calls/item (valid {summary['valid_call_rate']:.1%})",
        f"{summary['frames']:.1f} frames/item",
        f"search format {summary['format_rate']:.1%}",
    ]
    if "csv_rate" in summary:
        parts += [f"CSV {summary['csv_rate']:.1%}", f"verifier accuracy {summary['verifier_accuracy']:.1%}"]
    return "search: " + ", ".join(parts)


def _calls(trajectory: Trajectory) -> list[dict[str, Any]]:
    """The tool calls that ran, in order: the tool's name and the call's arguments."""
    return [
        {"name": message["name"], "arguments": message.get("arguments", {})}
        for message in trajectory.messages
        if message["role"] == "tool" and message["name"] != PARSE_ERROR_TOOL
    ]
