"""Evaluate a model on records: accuracy per problem type and task, format rate, lengths."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tqdm.auto import tqdm

from data_pipelines.completion_format import answer_block, extract_answer, find_answer, is_empty_thought
from data_pipelines.schema import Sample
from vlm_rl.config import EvalConfig
from vlm_rl.cpu_threads import CPUThreads
from vlm_rl.eval.judge import OpenAIJudge, score_official
from vlm_rl.eval.table import ReportError
from vlm_rl.media import MediaError
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rewards import accuracy_reward, format_reward
from vlm_rl.rollout import RolloutEngine, SamplingParams

if TYPE_CHECKING:
    from vlm_rl.eval.search_eval import SearchEval

LABELLED_GROUPS: tuple[str, ...] = ("difficulty",)
"""Record fields that break accuracy down (under ``by_group``) whenever some record carries them, as the
synthetic ``difficulty_mix`` records carry ``difficulty``."""


@dataclass(frozen=True)
class ItemScore:
    """How one answer scored: the headline reward, both multiple-choice rules (None for a scorer with a
    single verdict, such as the MMVU judge), and how it was decided."""

    reward: float
    reward_strict: float | None = None
    reward_lenient: float | None = None
    method: str = "rule"
    detail: str = ""


class Scorer(Protocol):
    """Scores one answer. `letter_rules` says whether its ItemScores carry the strict and lenient rewards."""

    letter_rules: bool

    def __call__(self, sample: Sample, text: str) -> ItemScore: ...


@dataclass(frozen=True)
class RuleScorer:
    """Score like the accuracy reward; multiple choice both strictly (exact letter, the papers' numbers) and
    leniently (first option letter), with `mc_mode` picking the headline.

    As in GRPO-CARE's and Video-R1's evaluation scripts, an output without an ``<answer>`` block is
    scored as if the whole output were the answer (so a bare ``B`` counts under strict scoring).
    """

    mc_mode: str
    letter_rules: bool = True

    def __call__(self, sample: Sample, text: str) -> ItemScore:
        answer_text = text if find_answer(text) is not None else answer_block(text.strip())
        strict = accuracy_reward(answer_text, sample.solution, sample.problem_type, mc_mode="strict")
        lenient = accuracy_reward(answer_text, sample.solution, sample.problem_type, mc_mode="lenient")
        return ItemScore(strict if self.mc_mode == "strict" else lenient, strict, lenient)


@dataclass(frozen=True)
class JudgeScorer:
    """MMVU official scoring: the rule pre-check, then `judge` (see `vlm_rl.eval.judge`); one verdict per item."""

    judge: OpenAIJudge
    letter_rules: bool = False

    def __call__(self, sample: Sample, text: str) -> ItemScore:
        question_type = sample.extra.get("question_type", sample.problem_type)
        correct, method, detail = score_official(
            sample.problem, sample.options, sample.answer, text, question_type, self.judge
        )
        return ItemScore(float(correct), method=method, detail=detail)


@dataclass
class EvalReport:
    """Scores of one evaluation; `results` holds one entry per record (nothing is dropped).

    `accuracy` uses the headline scoring (`settings["scoring"]`); `accuracy_strict` and
    `accuracy_lenient` are both reported under rule scoring and are None under a scorer with one
    verdict (the judge). Items whose media could not be read are in `results` with their error,
    count as wrong and stay in every denominator (`failures`). `search` holds the frame-search numbers
    of an evaluation with search (`vlm_rl.eval.search_eval.SearchEval.summary`), else None.
    """

    n: int
    accuracy: float
    accuracy_strict: float | None
    accuracy_lenient: float | None
    failures: int
    format_rate: float
    mean_length: float
    truncated_rate: float
    skip_ratio: float
    wall_time_s: float
    by_problem_type: dict[str, dict[str, float]]
    by_task: dict[str, dict[str, float]]
    by_group: dict[str, dict[str, dict[str, float]]]
    settings: dict[str, Any]
    results: list[dict[str, Any]] = field(repr=False)
    search: dict[str, float] | None = None

    def summary(self) -> dict[str, float]:
        """Flat scalars for logging (``search/<key>`` for the search numbers of a search evaluation)."""
        out = {"accuracy": self.accuracy, "format_rate": self.format_rate, "mean_length": self.mean_length}
        out["skip_ratio"] = self.skip_ratio
        if self.accuracy_lenient is not None:
            out["accuracy_lenient"] = self.accuracy_lenient
        out.update({f"accuracy/{k}": v["accuracy"] for k, v in self.by_problem_type.items()})
        if self.search is not None:
            out.update({f"search/{k}": v for k, v in self.search.items()})
        return out

    def write(self, path: str | Path) -> None:
        """The report as JSON (without a ``search`` key when the evaluation did not search)."""
        report = asdict(self)
        if self.search is None:
            del report["search"]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=1))


def evaluate(
    engine: RolloutEngine,
    encoder: PromptEncoder,
    samples: Sequence[Sample],
    cfg: EvalConfig,
    *,
    scorer: Scorer | None = None,
    items_path: str | Path | None = None,
    group_by: Sequence[str] = (),
    settings: dict[str, Any] | None = None,
    progress: bool = False,
    search: SearchEval | None = None,
) -> EvalReport:
    """Answer every sample once with `engine` (greedy when cfg.temperature == 0) and score it.

    `engine` is e.g. ``HFRolloutEngine(model, adapter)`` or a vLLM engine. `scorer` defaults to the
    rule scorer of ``cfg.mc_mode``. With `items_path`, every finished item is appended there as one
    JSON line keyed by its origin, and a rerun skips the items already there (a killed evaluation
    resumes and gives the same report); the file's first line records `settings`, and a rerun with
    other settings is refused. `group_by` names record fields (looked up in ``sample.extra`` and its
    ``metadata``) to break accuracy down by; LABELLED_GROUPS fields that some sample carries join them.
    With `progress`, a progress bar, and one line on stderr for each item whose media cannot be read
    (naming the file and the fix; what the decoder printed itself is dropped).

    With `search`, each sample is answered by a frame-search rollout instead (`vlm_rl.eval.search_eval`):
    the item is scored by the single-answer rule, its ``format`` is the search format, it gets a ``search``
    entry, the report a ``search`` summary, and the search settings are part of `settings`.
    """
    if not samples:
        raise ValueError("evaluation needs at least one record")
    group_by = _with_labelled_groups(group_by, samples)
    started = time.perf_counter()
    scorer = scorer or RuleScorer(cfg.mc_mode)
    settings = {**asdict(cfg), "prompt_template": encoder.data.prompt_template, **(settings or {})}
    if search is not None:
        search.check(samples)
        settings["search"] = search.settings
    done = _resume(Path(items_path), settings) if items_path is not None else {}
    params = SamplingParams(n=1, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p)
    todo = [s for s in samples if s.origin not in done]
    bar = tqdm(total=len(samples), initial=len(samples) - len(todo), desc="eval", unit="item", disable=not progress)
    threads = CPUThreads()
    with _ItemLog(items_path) as log:
        for start in range(0, len(todo), cfg.batch_size):
            threads.adapt()
            chunk = todo[start : start + cfg.batch_size]
            prompts, ready = [], []
            for sample in chunk:
                try:
                    with _native_stderr_held():
                        prompts.append(encoder.encode(sample))
                    ready.append(sample)
                except MediaError as err:
                    done[sample.origin] = log.write(_failed(sample, str(err), group_by, scorer.letter_rules))
                    if progress:
                        bar.write(f"{sample.origin}: {err} (counted wrong)", file=sys.stderr)
            if search is not None:
                for sample, item in zip(ready, _search_results(search, ready, prompts, params, scorer, group_by)):
                    done[sample.origin] = log.write(item)
            else:
                rollouts = engine.generate(prompts, params) if prompts else None
                for i, sample in enumerate(ready):
                    text = rollouts.texts[i]
                    item = _result(sample, text, len(rollouts.completion_ids[i]), rollouts.truncated[i], scorer(sample, text), group_by)
                    done[sample.origin] = log.write(item)
            bar.update(len(chunk))
            bar.set_postfix(accuracy=f"{_mean(r['reward'] for r in done.values()):.3f}")
    bar.close()
    results = [done[s.origin] for s in samples]
    letter_rules = scorer.letter_rules
    return EvalReport(
        n=len(results),
        accuracy=_mean(r["reward"] for r in results),
        accuracy_strict=_mean(r["reward_strict"] for r in results) if letter_rules else None,
        accuracy_lenient=_mean(r["reward_lenient"] for r in results) if letter_rules else None,
        failures=sum(r["error"] is not None for r in results),
        format_rate=_mean(r["format"] for r in results),
        mean_length=_mean(r["length"] for r in results),
        truncated_rate=_mean(float(r["truncated"]) for r in results),
        skip_ratio=_mean(float(r["skipped_thought"]) for r in results),
        wall_time_s=time.perf_counter() - started,
        by_problem_type=_grouped(results, lambda r: r["problem_type"], letter_rules),
        by_task=_grouped(results, lambda r: r["task"], letter_rules),
        by_group={key: _grouped(results, lambda r, key=key: r["groups"][key], letter_rules) for key in group_by},
        settings=settings,
        results=results,
        search=search.summary(results) if search is not None else None,
    )


@contextlib.contextmanager
def _native_stderr_held() -> Iterator[None]:
    """Hold what is written to file descriptor 2 (decord and FFmpeg print there from C++) while one item's
    media is read: dropped if that raises (the MediaError says it in one line), written out otherwise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        os.write(2, held.read())


def _result(sample: Sample, text: str, length: int, truncated: bool, score: ItemScore, group_by: Sequence[str]) -> dict[str, Any]:
    return {
        "origin": sample.origin,
        "sample_id": sample.sample_id,
        "problem_type": sample.problem_type,
        "task": _task(sample),
        "groups": {key: _group_value(sample, key) for key in group_by},
        "answer": sample.answer,
        "prediction": extract_answer(text),
        "output": text,
        "reward": score.reward,
        "reward_strict": score.reward_strict,
        "reward_lenient": score.reward_lenient,
        "correct": score.reward == 1.0,
        "scoring": score.method,
        "scoring_detail": score.detail,
        "error": None,
        "format": format_reward(text),
        "skipped_thought": is_empty_thought(text),
        "length": length,
        "truncated": truncated,
    }


def _search_results(
    search: SearchEval,
    samples: Sequence[Sample],
    prompts: Sequence[Any],
    params: SamplingParams,
    scorer: Scorer,
    group_by: Sequence[str],
) -> list[dict[str, Any]]:
    """The items of one batch answered by search rollouts (see `evaluate`)."""
    from vlm_rl.eval.search_eval import single_answer_score

    items = []
    for sample, rollout in zip(samples, search.run(samples, prompts, params) if prompts else []):
        score = single_answer_score(rollout.turns, sample, scorer)
        item = _result(sample, rollout.text, rollout.length, rollout.truncated, score, group_by)
        entry = search.entry(rollout, sample, score.reward)
        item.update(
            prediction=entry["answers"][0] if len(entry["answers"]) == 1 else "",
            format=entry["search_format"],
            search=entry,
        )
        items.append(item)
    return items


def _failed(sample: Sample, error: str, group_by: Sequence[str], letter_rules: bool) -> dict[str, Any]:
    """An item whose input could not be prepared: kept in the denominator, scored wrong, error recorded."""
    score = ItemScore(0.0, 0.0, 0.0, "failed") if letter_rules else ItemScore(0.0, method="failed")
    return {**_result(sample, "", 0, False, score, group_by), "error": error}


class _ItemLog:
    """Appends finished items to a JSON-lines file (flushed per item), or does nothing without a path."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        self.handle = None

    def __enter__(self) -> _ItemLog:
        if self.path is not None:
            self.handle = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            self.handle.close()

    def write(self, item: dict[str, Any]) -> dict[str, Any]:
        if self.handle is not None:
            self.handle.write(json.dumps(item) + "\n")
            self.handle.flush()
        return item


def _resume(path: Path, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Items already evaluated under the same settings; starts the file with a settings line if new.

    A last line cut short by a kill is dropped (and removed from the file) so that item runs again.
    """
    header = json.loads(json.dumps({"settings": settings}))
    if not path.is_file() or path.stat().st_size == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(header) + "\n")
        return {}
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if json.loads(lines[0]) != header:
        raise ReportError(f"{path} holds results of an evaluation with other settings; delete it to start over")
    done, kept = {}, [lines[0]]
    for number, line in enumerate(lines[1:], start=2):
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines) and not text.endswith("\n"):
                path.write_text("\n".join(kept) + "\n")
                break
            raise ReportError(f"{path} line {number} is not valid JSON; delete the file to start over") from None
        done[item["origin"]] = item
        kept.append(line)
    return done


def _with_labelled_groups(group_by: Sequence[str], samples: Sequence[Sample]) -> tuple[str, ...]:
    """`group_by` plus every LABELLED_GROUPS field that some sample carries."""
    labelled = [key for key in LABELLED_GROUPS if key not in group_by and any(key in s.extra for s in samples)]
    return (*group_by, *labelled)


def _task(sample: Sample) -> str:
    return str(sample.extra.get("task") or sample.extra.get("data_source") or sample.problem_type)


def _group_value(sample: Sample, key: str) -> str:
    metadata = sample.extra.get("metadata")
    value = sample.extra.get(key, metadata.get(key) if isinstance(metadata, dict) else None)
    return "unknown" if value is None else str(value)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def _grouped(
    results: list[dict[str, Any]], key: Callable[[dict[str, Any]], str], letter_rules: bool
) -> dict[str, dict[str, float]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[key(r)].append(r)
    out = {}
    for name, rows in sorted(groups.items()):
        out[name] = {"n": len(rows), "accuracy": _mean(r["reward"] for r in rows)}
        if letter_rules:
            out[name]["accuracy_lenient"] = _mean(r["reward_lenient"] for r in rows)
        out[name]["format_rate"] = _mean(r["format"] for r in rows)
    return out
