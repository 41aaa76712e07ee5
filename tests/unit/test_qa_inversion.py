"""TW-GRPO Question-Answer Inversion (arXiv 2505.24718): worked example, rule table, statuses, files, errors."""

from __future__ import annotations

import json
import random
from collections.abc import MutableSequence, Sequence
from pathlib import Path
from typing import Any

import pytest

from data_pipelines.formats import load_samples
from data_pipelines.qa_inversion import (
    QAIReport,
    invert_file,
    invert_record,
    negate_question,
)
from data_pipelines.schema import RecordError

# The QA inversion example of docs/algorithms.md ("Worked examples the unit tests check"), in TW-GRPO's record
# shape (no problem_type).
NEXTGQA_RECORD: dict[str, Any] = {
    "id": "clothes_1",
    "video": "/NExTQA/videos/clothes.mp4",
    "question": "What did the person do with the clothes",
    "options": ["(A) lied on", "(B) took", "(C) put down", "(D) washed"],
    "answer": "(C)",
    "problem": "What did the person do with the clothes\nA lied on\nB took\nC put down\nD washed",
    "solution": "<answer>C</answer>",
    "is_negated": False,
}
VIDEO_R1_RECORD: dict[str, Any] = {
    "problem_id": 7,
    "problem": "What did the person do with the clothes",
    "data_type": "video",
    "problem_type": "multiple choice",
    "options": ["A. lied on", "B. took", "C. put down", "D. washed"],
    "process": "<think>The person puts the clothes down.</think>",
    "solution": "<answer>C</answer>",
    "path": "./clips/clothes.mp4",
    "data_source": "demo",
}
NO_RULE_RECORD: dict[str, Any] = {
    **VIDEO_R1_RECORD,
    "problem_id": 8,
    "problem": "How many shirts did the person fold?",
    "options": ["A. one", "B. two", "C. three"],
    "solution": "<answer>B</answer>",
}
NUMERICAL_RECORD: dict[str, Any] = {
    "problem_id": 9,
    "problem": "How many cubes are left on the table?",
    "data_type": "video",
    "problem_type": "numerical",
    "options": [],
    "solution": "<answer>3</answer>",
    "path": "./clips/clothes.mp4",
}
MULTI_ANSWER_RECORD: dict[str, Any] = {
    "id": "gift_1",
    "video": "/NExTQA/videos/clothes.mp4",
    "options": ["(A) unwrap it", "(B) play with a train", "(C) gesture"],
    "problem": "why didn't the boy move to the sofa\nA unwrap it\nB play with a train\nC gesture",
    "solution": "<answer>B,C</answer>",
    "is_negated": True,
}
NOT_CHOICE = "no problem_type and not a one-letter answer with options"


class FixedDraws(random.Random):
    """An rng whose draws are the worked example's: invert, keep k=2, keep "lied on" and "took", fixed shuffle."""

    def __init__(self) -> None:
        super().__init__(0)
        self.calls: list[tuple[Any, ...]] = []

    def random(self) -> float:
        self.calls.append(("random",))
        return 0.0

    def randint(self, a: int, b: int) -> int:
        self.calls.append(("randint", a, b))
        return 2

    def sample(self, population: Sequence[Any], k: int, *, counts: Any = None) -> list[Any]:
        self.calls.append(("sample", list(population), k))
        return [1, 0]  # distractors W = [lied on, took, washed]: keep indices 0 and 1, in any draw order

    def shuffle(self, x: MutableSequence[Any]) -> None:  # type: ignore[override]
        self.calls.append(("shuffle", list(x)))
        x[:] = [x[2], x[0], x[1]]  # [put down, lied on, took] -> [took, put down, lied on]


def make_media(root: Path) -> None:
    for relative in ("NExTQA/videos/clothes.mp4", "clips/clothes.mp4"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(b"\0" * 64)  # the loader checks existence and size only


def negatable(index: int) -> dict[str, Any]:
    return {**VIDEO_R1_RECORD, "problem_id": 100 + index, "solution": "<answer>" + "ABCD"[index % 4] + "</answer>"}


def read_records(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return json.loads(path.read_text(encoding="utf-8"))


# --- the worked example -------------------------------------------------------------------------


def test_worked_example_nextgqa_shape() -> None:
    rng = FixedDraws()
    result = invert_record(NEXTGQA_RECORD, rng, probability=0.5)
    assert result.status == "inverted" and result.skip_reason is None
    assert result.record == {
        **NEXTGQA_RECORD,
        "question": "what didn't the person do with the clothes",
        "options": ["(A) took", "(B) put down", "(C) lied on"],
        "answer": "(A),(C)",
        "problem": "what didn't the person do with the clothes\nA took\nB put down\nC lied on",
        "solution": "<answer>A,C</answer>",
        "problem_type": "multi-answer",
        "is_negated": True,
    }
    assert rng.calls == [
        ("random",),
        ("randint", 1, 3),
        ("sample", [0, 1, 2], 2),
        ("shuffle", [("put down", False), ("lied on", True), ("took", True)]),
    ]


def test_worked_example_video_r1_shape_drops_process_and_keeps_media() -> None:
    result = invert_record(VIDEO_R1_RECORD, FixedDraws(), probability=1.0)
    record = result.record
    assert result.status == "inverted"
    assert record["problem"] == "what didn't the person do with the clothes\nA took\nB put down\nC lied on"
    assert record["solution"] == "<answer>A,C</answer>" and record["problem_type"] == "multi-answer"
    assert record["options"] == ["(A) took", "(B) put down", "(C) lied on"]
    assert "process" not in record and "question" not in record and "answer" not in record
    for key in ("path", "data_type", "problem_id", "data_source"):
        assert record[key] == VIDEO_R1_RECORD[key]


# --- negation rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "negated"),
    [
        ("What did the person do with the clothes", "what didn't the person do with the clothes"),
        ("Why does the girl smile?", "why doesn't the girl smile?"),
        ("what do the kids hold", "what don't the kids hold"),
        ("Who is  holding the cup?", "who isn't  holding the cup?"),
        ("What are the dogs chasing?", "what aren't the dogs chasing?"),
        ("What was on the table?", "what wasn't on the table?"),
        ("Which were thrown first?", "which weren't thrown first?"),
        ("What will the person do next with the box?", "what won't the person do next with the box?"),
        ("What can the man reach?", "what can't the man reach?"),
        ("What has the boy eaten?", "what hasn't the boy eaten?"),
        ("Did the man open the door?", "didn't the man open the door?"),
        ("What happened after the man sat down?", "what didn't happen after the man sat down?"),
    ],
)
def test_negation_rules(question: str, negated: str) -> None:
    assert negate_question(question) == negated


@pytest.mark.parametrize(
    "question",
    [
        "How many people are in the room?",
        "Which object was tidied up by the person?",
        "what didn't the boy do",
        "What did the boy not do?",
        "What color cannot be seen?",
        "The man is holding what?",
        "",
    ],
)
def test_no_negation_rule(question: str) -> None:
    assert negate_question(question) is None


# --- statuses -----------------------------------------------------------------------------------


def test_no_rule_record_is_kept_unchanged_without_drawing() -> None:
    rng = FixedDraws()
    result = invert_record(NO_RULE_RECORD, rng, probability=1.0)
    assert result.status == "no_rule" and result.record == NO_RULE_RECORD and rng.calls == []


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (NUMERICAL_RECORD, "problem_type 'numerical'"),
        (
            {**VIDEO_R1_RECORD, "problem_type": "multi-answer", "solution": "<answer>A,B</answer>"},
            "problem_type 'multi-answer'",
        ),
        (MULTI_ANSWER_RECORD, NOT_CHOICE),
        ({k: v for k, v in NEXTGQA_RECORD.items() if k != "options"}, NOT_CHOICE),
    ],
)
def test_records_that_are_not_single_answer_choice_are_skipped(record: dict[str, Any], reason: str) -> None:
    rng = FixedDraws()
    result = invert_record(record, rng, probability=1.0)
    assert (result.status, result.skip_reason, result.record, rng.calls) == ("skipped", reason, record, [])


def test_probability_not_drawn_keeps_the_record() -> None:
    result = invert_record(NEXTGQA_RECORD, random.Random(0), probability=0.0)
    assert result.status == "kept" and result.record == NEXTGQA_RECORD


def test_inputs_are_not_mutated() -> None:
    before = json.dumps(NEXTGQA_RECORD)
    invert_record(NEXTGQA_RECORD, FixedDraws(), probability=1.0)
    assert json.dumps(NEXTGQA_RECORD) == before


def test_every_inversion_keeps_one_wrong_option_and_one_to_all_distractors() -> None:
    rng = random.Random(3)
    sizes = set()
    for index in range(200):
        record = negatable(index)
        result = invert_record(record, rng, probability=1.0)
        original = [option[3:] for option in record["options"]]
        correct = original["ABCD".index(record["solution"][8])]
        texts = [option[4:] for option in result.record["options"]]
        gold = result.record["solution"][8:-9].split(",")
        wrong = [text for letter, text in zip("ABCD", texts) if letter not in gold]
        assert wrong == [correct] and set(texts) <= set(original) and len(gold) == len(texts) - 1
        sizes.add(len(gold))
    assert sizes == {1, 2, 3}  # k is drawn from 1..|W| inclusive


# --- files --------------------------------------------------------------------------------------


def mixed_records() -> list[dict[str, Any]]:
    return [NEXTGQA_RECORD, NO_RULE_RECORD, NUMERICAL_RECORD, MULTI_ANSWER_RECORD] + [negatable(i) for i in range(12)]


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_invert_file_round_trips_and_loads_as_multi_answer(tmp_path: Path, suffix: str) -> None:
    make_media(tmp_path)
    source = tmp_path / f"train{suffix}"
    records = mixed_records()
    if suffix == ".jsonl":
        source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    else:
        source.write_text(json.dumps(records), encoding="utf-8")
    target = tmp_path / "out" / f"qai{suffix}"

    report = invert_file(source, target, probability=1.0, seed=0)

    assert report == QAIReport(
        inverted=13,
        kept=0,
        no_rule=1,
        skipped=2,
        total=16,
        skip_reasons={"problem_type 'numerical'": 1, NOT_CHOICE: 1},
    )
    written = read_records(target)
    assert len(written) == len(records) and written[1:4] == records[1:4]
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no temporary file left
    samples = load_samples(target, media_root=tmp_path)
    changed = [i for i, (before, after) in enumerate(zip(records, written)) if before != after]
    assert changed == [0, *range(4, 16)]
    for i in changed:
        sample = samples[i]
        assert sample.problem_type == "multi-answer" and sample.extra["options_in_problem"]
        assert sample.problem.startswith("what didn't the person do with the clothes\nA ")
        assert sample.solution == written[i]["solution"] and 1 <= len(sample.answer.split(",")) < len(sample.options)
    assert samples[0].media_path == (tmp_path / "NExTQA/videos/clothes.mp4").absolute()
    assert samples[4].media_path == (tmp_path / "clips/clothes.mp4").absolute()


def test_invert_file_is_deterministic_under_a_seed(tmp_path: Path) -> None:
    source = tmp_path / "train.json"
    source.write_text(json.dumps(mixed_records()), encoding="utf-8")
    outputs = []
    for name, seed in (("a.json", 5), ("b.json", 5), ("c.json", 6)):
        invert_file(source, tmp_path / name, probability=0.5, seed=seed)
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1] and outputs[0] != outputs[2]


def test_probability_zero_and_one(tmp_path: Path) -> None:
    source = tmp_path / "train.jsonl"
    records = mixed_records()
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    none = invert_file(source, tmp_path / "none.jsonl", probability=0.0, seed=1)
    assert (none.inverted, none.kept, none.no_rule, none.skipped, none.total) == (0, 13, 1, 2, 16)
    assert read_records(tmp_path / "none.jsonl") == records
    every = invert_file(source, tmp_path / "all.jsonl", probability=1.0, seed=1)
    assert (every.inverted, every.kept) == (13, 0)
    half = invert_file(source, tmp_path / "half.jsonl", probability=0.5, seed=1)
    assert half.inverted + half.kept == 13 and 0 < half.inverted < 13


def test_probability_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"probability must be in \[0, 1\], got 1.5"):
        invert_file(tmp_path / "train.json", tmp_path / "out.json", probability=1.5, seed=0)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "detail"),
    [
        ({"options": None}, "'options'", "at least two options"),
        ({"options": ["A. lied on"]}, "'options'", "at least two options"),
        ({"options": ["A. lied on", "took", "C. put down"]}, "'options' item 1", "not a labelled option"),
        ({"options": ["A. lied on", "A. took", "C. put down"]}, "'options'", "repeats a letter label"),
        ({"solution": "<answer>E</answer>"}, "'solution'", "answer letter 'E' is not among the option letters"),
        ({"solution": "<answer>C. put down</answer>"}, "'solution'", "one option letter"),
        ({"solution": None}, "'solution'", "one option letter"),
        ({"problem": "  "}, "'problem'", "non-empty question text"),
    ],
)
def test_bad_records_name_file_record_and_field(
    tmp_path: Path, change: dict[str, Any], field: str, detail: str
) -> None:
    source = tmp_path / "train.json"
    source.write_text(json.dumps([NO_RULE_RECORD, {**VIDEO_R1_RECORD, **change}]), encoding="utf-8")
    with pytest.raises(RecordError) as error:
        invert_file(source, tmp_path / "out.json", probability=1.0, seed=0)
    message = str(error.value)
    assert message.startswith(f"{source} record 1: field {field}") and detail in message and "\n" not in message
    assert not (tmp_path / "out.json").exists()


def test_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    source = tmp_path / "train.jsonl"
    source.write_text(json.dumps(NO_RULE_RECORD) + "\n" + json.dumps([1, 2]) + "\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"train\.jsonl line 2: expected a JSON object"):
        invert_file(source, tmp_path / "out.jsonl", probability=1.0, seed=0)
