"""TW-GRPO's Question-Answer Inversion (QAI): single-answer multiple choice → multi-answer, offline.

TW-GRPO (arXiv 2505.24718, "Question-Answer Inversion"; docs/algorithms.md) negates a
single-answer question ("what did …" → "what didn't …") and makes its former distractors the
correct answers, keeping a random 1..n−1 of them so that the model cannot learn "negated
question ⇒ pick every other option".

Differences from the official conversion scripts, all deliberate:

- A record whose question no negation rule fits is kept unchanged (status ``"no_rule"``). The
  scripts invert its answers anyway, which gives wrong labels.
- The rule is checked before the probability is drawn, so `probability` is the share of
  *negatable* records that are inverted; the scripts' RNG is also unseeded, ours is seeded.
- A record that is not inverted is written back unchanged, not reformatted.
- An inverted record loses ``process`` (its reasoning answers the original question) and gets
  ``problem_type`` ``"multi-answer"``; ``question`` and ``answer`` are rewritten when present.

Negation rules (`negate_question`), applied to the lower-cased question, first match wins:

1. A question that already holds a negation ("not", "never", "cannot", "…n't") has no rule.
2. First word an auxiliary from `NEGATED_AUXILIARIES` ("did the man …") → its negation.
3. Second word an auxiliary ("what did …", "why is …", "what will …") → its negation.
4. Second word in `NEGATED_VERBS` ("what happened …" → "what didn't happen …").

Anything else ("how many …", "which object was …") has no rule.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from data_pipelines.completion_format import answer_block, find_answer
from data_pipelines.record_files import iter_records, short, write_records
from data_pipelines.schema import RecordError

NEGATED_AUXILIARIES: dict[str, str] = {
    "did": "didn't",
    "does": "doesn't",
    "do": "don't",
    "is": "isn't",
    "are": "aren't",
    "was": "wasn't",
    "were": "weren't",
    "has": "hasn't",
    "have": "haven't",
    "had": "hadn't",
    "can": "can't",
    "could": "couldn't",
    "will": "won't",
    "would": "wouldn't",
    "should": "shouldn't",
}
"""Auxiliary verb → its negation; the NExT-GQA script's seven plus the modals and "have"."""

NEGATED_VERBS: dict[str, str] = {"happened": "didn't happen", "happens": "doesn't happen"}
"""Main verbs negated as the second word (the STAR script's "what happened" rule)."""

Status = Literal["inverted", "kept", "no_rule", "skipped"]

_NEGATION = re.compile(r"\b(?:not|never|cannot)\b|n['’]t\b")
_WORD = re.compile(r"\S+")
_ONE_LETTER = re.compile(r"[A-Z]")
_LABELLED_OPTION = re.compile(r"\s*\(?([A-Z])(?:[.):]\s*|\s+)(\S.*?)\s*", re.DOTALL)


@dataclass(frozen=True)
class Inversion:
    """What `invert_record` did: the record to write, its status, and why it was skipped."""

    record: dict[str, Any]
    status: Status
    skip_reason: str | None = None


@dataclass(frozen=True)
class QAIReport:
    """Record counts of one `invert_file` run; ``total`` is the sum of the four statuses."""

    inverted: int
    kept: int
    no_rule: int
    skipped: int
    total: int
    skip_reasons: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Question:
    """A validated single-answer multiple-choice record: question text, option texts, correct index."""

    text: str
    options: tuple[str, ...]
    correct: int


def negate_question(question: str) -> str | None:
    """The lower-cased, negated `question`, or None when no rule in the module docstring fits."""
    text = question.strip().lower()
    if _NEGATION.search(text):
        return None
    words = list(_WORD.finditer(text))
    if words and words[0].group() in NEGATED_AUXILIARIES:
        return _replace(text, words[0], NEGATED_AUXILIARIES[words[0].group()])
    if len(words) > 1:
        second = words[1].group()
        negated = NEGATED_AUXILIARIES.get(second) or NEGATED_VERBS.get(second)
        if negated is not None:
            return _replace(text, words[1], negated)
    return None


def invert_record(
    record: Mapping[str, Any], rng: random.Random, *, probability: float, label: str = "record"
) -> Inversion:
    """Invert one record with probability `probability` if it is a negatable single-answer question.

    Candidates are records with ``problem_type`` "multiple choice", or without a ``problem_type``
    but with ``options`` and a one-letter answer (TW-GRPO's NExT-GQA shape). Other records come
    back unchanged as ``"skipped"``. `rng` is drawn only for negatable candidates, in this order:
    ``random()`` (invert when below `probability`), ``randint(1, |W|)`` for the number k of
    distractors W kept, ``sample(range(|W|), k)`` for which (kept in their original order),
    ``shuffle`` of [correct] + kept. `label` names the record in a RecordError.
    """
    if not isinstance(record, Mapping):
        raise RecordError(
            f"{label}: expected a JSON object with problem, options and solution, got {short(record)}"
        )
    skip_reason = _skip_reason(record)
    if skip_reason is not None:
        return Inversion(dict(record), "skipped", skip_reason)
    question = _parse_question(record, label)
    negated = negate_question(question.text)
    if negated is None:
        return Inversion(dict(record), "no_rule")
    if not rng.random() < probability:
        return Inversion(dict(record), "kept")
    return Inversion(_inverted_record(record, question, negated, rng), "inverted")


def invert_file(in_path: str | Path, out_path: str | Path, *, probability: float, seed: int) -> QAIReport:
    """Apply `invert_record` to every record of a ``.json`` (list) or ``.jsonl`` file, in order.

    One ``random.Random(seed)`` serves the whole file, so the output is a function of the input,
    `probability` and `seed`. The output is a JSON list, or JSON Lines when `out_path` ends in
    ``.jsonl``, written to a temporary file beside it and moved into place.
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {probability}")
    in_path, out_path = Path(in_path), Path(out_path)
    rng = random.Random(seed)
    results = [
        invert_record(record, rng, probability=probability, label=label) for label, _, record in iter_records(in_path)
    ]
    write_records(out_path, [result.record for result in results])
    statuses = Counter(result.status for result in results)
    return QAIReport(
        inverted=statuses["inverted"],
        kept=statuses["kept"],
        no_rule=statuses["no_rule"],
        skipped=statuses["skipped"],
        total=len(results),
        skip_reasons=dict(Counter(r.skip_reason for r in results if r.skip_reason is not None)),
    )


# --- one record ---------------------------------------------------------------------------------


def _skip_reason(record: Mapping[str, Any]) -> str | None:
    """Why `record` is not a single-answer multiple-choice candidate, or None when it is one."""
    problem_type = record.get("problem_type")
    if problem_type is not None:
        return None if problem_type == "multiple choice" else f"problem_type {problem_type!r}"
    solution = record.get("solution")
    answer = find_answer(solution) if isinstance(solution, str) else None
    if "options" in record and answer is not None and _ONE_LETTER.fullmatch(answer):
        return None
    return "no problem_type and not a one-letter answer with options"


def _parse_question(record: Mapping[str, Any], label: str) -> _Question:
    options, letters = _parse_options(record.get("options"), label)
    letter = _answer_letter(record.get("solution"), label)
    if letter not in letters:
        raise RecordError(
            f"{label}: field 'solution': answer letter {letter!r} is not among the option letters "
            f"{', '.join(letters)}; fix the answer or the options"
        )
    problem = record.get("problem")
    if not isinstance(problem, str) or not problem.strip():
        raise RecordError(f"{label}: field 'problem' must be the non-empty question text, got {short(problem)}")
    return _Question(_strip_inline_options(problem, letters), options, letters.index(letter))


def _parse_options(options: Any, label: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Option texts without their labels, and the labels, of a list like ``["(A) took", "B. ran"]``."""
    if not isinstance(options, list) or len(options) < 2:
        raise RecordError(
            f'{label}: field \'options\' must list at least two options like ["A. red", "B. blue"], '
            f"got {short(options)}"
        )
    texts: list[str] = []
    letters: list[str] = []
    for position, option in enumerate(options):
        match = _LABELLED_OPTION.fullmatch(option) if isinstance(option, str) else None
        if match is None:
            raise RecordError(
                f"{label}: field 'options' item {position} ({short(option)}) is not a labelled option; "
                'write options like "A. red" or "(A) red"'
            )
        letters.append(match.group(1))
        texts.append(match.group(2))
    if len(set(letters)) != len(letters):
        raise RecordError(
            f"{label}: field 'options' repeats a letter label ({', '.join(letters)}); give every option its own letter"
        )
    return tuple(texts), tuple(letters)


def _answer_letter(solution: Any, label: str) -> str:
    answer = find_answer(solution) if isinstance(solution, str) else None
    if answer is None or not _ONE_LETTER.fullmatch(answer):
        raise RecordError(
            f'{label}: field \'solution\' must hold one option letter like "<answer>B</answer>", got {short(solution)}'
        )
    return answer


def _strip_inline_options(problem: str, letters: tuple[str, ...]) -> str:
    """The question part of `problem`: without trailing ``"\\nA took\\nB put down"`` option lines, if any."""
    lines = problem.rstrip().split("\n")
    tail = lines[-len(letters) :]
    matches = [_LABELLED_OPTION.fullmatch(line) for line in tail]
    if len(lines) > len(letters) and all(m is not None and m.group(1) == letter for m, letter in zip(matches, letters)):
        lines = lines[: -len(letters)]
    return "\n".join(lines).strip()


def _inverted_record(
    record: Mapping[str, Any], question: _Question, negated: str, rng: random.Random
) -> dict[str, Any]:
    """The multi-answer record: the kept distractors are the gold set, the old answer the one wrong option."""
    distractors = [(text, True) for i, text in enumerate(question.options) if i != question.correct]
    keep = rng.randint(1, len(distractors))
    kept = [distractors[i] for i in sorted(rng.sample(range(len(distractors)), keep))]
    new_options = [(question.options[question.correct], False), *kept]
    rng.shuffle(new_options)
    letters = [chr(ord("A") + i) for i in range(len(new_options))]
    texts = [text for text, _ in new_options]
    gold = [letter for letter, (_, is_gold) in zip(letters, new_options) if is_gold]

    inverted = {key: value for key, value in record.items() if key != "process"}
    inverted["problem"] = negated + "".join(f"\n{letter} {text}" for letter, text in zip(letters, texts))
    inverted["options"] = [f"({letter}) {text}" for letter, text in zip(letters, texts)]
    inverted["solution"] = answer_block(",".join(gold))
    inverted["problem_type"] = "multi-answer"
    inverted["is_negated"] = True
    if "question" in record:
        inverted["question"] = negated
    if "answer" in record:
        inverted["answer"] = ",".join(f"({letter})" for letter in gold)
    return inverted


def _replace(text: str, word: re.Match[str], replacement: str) -> str:
    return text[: word.start()] + replacement + text[word.end() :]
