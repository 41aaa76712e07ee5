"""TON thought dropout (arXiv 2505.16854; docs/algorithms.md): strings, sampling, files, errors."""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from data_pipelines.formats.video_r1 import load_samples
from data_pipelines.prompts import sft_target
from data_pipelines.schema import RecordError
from data_pipelines.synthetic.generator import SyntheticDataset, make_dataset
from data_pipelines.thought_dropout import (
    DEFAULT_DROP_PROBABILITY,
    EMPTY_THOUGHT,
    EMPTY_THOUGHT_CONTENT,
    ThoughtDropoutReport,
    drop_thought,
    drop_thoughts_file,
    is_empty_thought,
)

COT_RECORD = {
    "problem_id": 6,
    "problem": "How many cubes are left on the table?",
    "data_type": "video",
    "problem_type": "numerical",
    "options": [],
    "process": "<think>Let me count ... wait, one cube rolled off. 3 cubes remain.</think>",
    "solution": "<answer>3</answer>",
    "path": "./clips/video_0006.mp4",
    "data_source": "DemoCLEVRER",
}


class FixedDraws(random.Random):
    """A Random whose `random()` returns the given values in turn."""

    def __init__(self, *draws: float) -> None:
        super().__init__(0)
        self.draws = list(draws)

    def random(self) -> float:
        return self.draws.pop(0)


def records(n: int) -> list[dict[str, Any]]:
    return [{**COT_RECORD, "problem_id": i, "process": f"<think>thought {i}</think>"} for i in range(n)]


def write_json(path: Path, payload: Any) -> Path:
    path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return path


def write_jsonl(path: Path, payload: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in payload), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    return make_dataset(tmp_path_factory.mktemp("ton"), n_train=4, n_test=2, seed=0)


# --- the empty thought and the default p -----------------------------------------------------------


def test_empty_thought_is_two_newlines_between_the_tags_and_p_is_one_half() -> None:
    assert EMPTY_THOUGHT_CONTENT == "\n\n"
    assert EMPTY_THOUGHT == "<think>\n\n</think>"
    assert DEFAULT_DROP_PROBABILITY == 0.5


def test_worked_example_aitz_target() -> None:
    """A dropped TON AITZ target is <think> + two newlines + </think> and the unchanged action."""
    action = "<action>{'action': 'CLICK', 'value': None, 'position': [0.51, 0.7]}</action>"
    record = {"process": "<think>The search bar is at the top of the screen.</think>" + action}
    dropped, was_dropped = drop_thought(record, FixedDraws(0.49), 0.5)
    assert was_dropped
    assert dropped["process"] == "<think>\n\n</think>" + action
    kept, was_dropped = drop_thought(record, FixedDraws(0.5), 0.5)
    assert not was_dropped and kept == record


def test_drop_iff_draw_below_p() -> None:
    """With a fixed RNG, u < p drops the thought to exactly "\\n\\n"; u >= p keeps it."""
    cases = [(0.0, 0.5, True), (0.4999, 0.5, True), (0.5, 0.5, False), (0.19, 0.2, True), (0.2, 0.2, False)]
    for u, p, expected in cases:
        out, dropped = drop_thought(COT_RECORD, FixedDraws(u), p)
        assert dropped is expected
        thought = re.fullmatch(r"<think>(.*)</think>", out["process"], re.DOTALL).group(1)
        assert (thought == "\n\n") is expected


def test_only_the_thought_changes() -> None:
    original = copy.deepcopy(COT_RECORD)
    out, dropped = drop_thought(COT_RECORD, random.Random(0), 1.0)
    assert dropped and out["process"] == EMPTY_THOUGHT
    assert COT_RECORD == original, "the input record must not be modified"
    assert list(out) == list(COT_RECORD)
    assert {k: v for k, v in out.items() if k != "process"} == {k: v for k, v in COT_RECORD.items() if k != "process"}


def test_text_around_the_think_block_is_kept() -> None:
    out, _ = drop_thought({"process": "  <think>\nlong\nthought\n</think>\n"}, random.Random(0), 1.0)
    assert out["process"] == "  <think>\n\n</think>\n"


# --- sampling ------------------------------------------------------------------------------------


def test_probability_zero_and_one() -> None:
    rng = random.Random(1)
    assert not any(drop_thought(r, rng, 0.0)[1] for r in records(200))
    assert all(drop_thought(r, rng, 1.0)[0]["process"] == EMPTY_THOUGHT for r in records(200))


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_seeded_decisions_follow_one_draw_per_record(tmp_path: Path, p: float) -> None:
    n = 4000
    src = write_jsonl(tmp_path / "in.jsonl", records(n))
    report = drop_thoughts_file(src, tmp_path / "out.jsonl", probability=p, seed=7)
    out = read_jsonl(tmp_path / "out.jsonl")
    decisions = [r["process"] == EMPTY_THOUGHT for r in out]
    stream = random.Random(7)
    assert decisions == [stream.random() < p for _ in range(n)]
    assert report == ThoughtDropoutReport(total=n, dropped=sum(decisions), kept=n - sum(decisions))
    assert abs(report.dropped / n - p) < 0.03


def test_deterministic_under_a_seed(tmp_path: Path) -> None:
    src = write_json(tmp_path / "in.json", records(300))
    first = drop_thoughts_file(src, tmp_path / "a.json", probability=0.5, seed=3)
    second = drop_thoughts_file(src, tmp_path / "b.json", probability=0.5, seed=3)
    other = drop_thoughts_file(src, tmp_path / "c.json", probability=0.5, seed=4)
    assert first == second
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert (tmp_path / "a.json").read_bytes() != (tmp_path / "c.json").read_bytes()
    assert other.total == 300


# --- files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_round_trip_keeps_format_order_and_fields(tmp_path: Path, suffix: str) -> None:
    original = records(50)
    src = tmp_path / f"in{suffix}"
    (write_json if suffix == ".json" else write_jsonl)(src, original)
    out_path = tmp_path / "sub" / f"out{suffix}"
    report = drop_thoughts_file(src, out_path, probability=0.5, seed=0)
    out = json.loads(out_path.read_text()) if suffix == ".json" else read_jsonl(out_path)
    assert isinstance(out, list) and len(out) == report.total == 50
    assert 0 < report.dropped < 50 and report.dropped + report.kept == 50
    for before, after in zip(original, out):
        assert list(after) == list(before)
        assert {k: v for k, v in after.items() if k != "process"} == {k: v for k, v in before.items() if k != "process"}
        assert after["process"] in (before["process"], EMPTY_THOUGHT)
    assert sum(r["process"] == EMPTY_THOUGHT for r in out) == report.dropped
    assert [p.name for p in out_path.parent.iterdir()] == [out_path.name], "no temporary file is left behind"


def test_in_place_rewrite(tmp_path: Path) -> None:
    src = write_json(tmp_path / "data.json", records(10))
    report = drop_thoughts_file(src, src, probability=1.0, seed=0)
    assert report == ThoughtDropoutReport(total=10, dropped=10, kept=0)
    assert all(r["process"] == EMPTY_THOUGHT for r in json.loads(src.read_text()))


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_synthetic_output_loads_with_the_video_r1_reader(synthetic: SyntheticDataset, suffix: str) -> None:
    train = json.loads(synthetic.train_path.read_text())
    src = synthetic.root / f"ton_in{suffix}"
    (write_json if suffix == ".json" else write_jsonl)(src, train)
    out_path = synthetic.root / f"ton_out{suffix}"
    report = drop_thoughts_file(src, out_path, probability=1.0, seed=0)
    assert report == ThoughtDropoutReport(total=4, dropped=4, kept=0)
    before, after = load_samples(synthetic.train_path), load_samples(out_path)
    assert [s.sample_id for s in after] == [s.sample_id for s in before]
    for old, new in zip(before, after):
        assert new.process == EMPTY_THOUGHT and not is_empty_thought(old.process)
        assert (new.solution, new.answer, new.media_path) == (old.solution, old.answer, old.media_path)
        assert sft_target(new) == "<think>\n\n</think>\n" + old.solution
        assert is_empty_thought(sft_target(new))


# --- is_empty_thought ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        EMPTY_THOUGHT,
        "<think>\n\n</think><answer>3</answer>",
        "<think>\n\n</think>\n<answer>B</answer>",
        "<think></think><answer>3</answer>",
        "<think> \t\n </think> <answer>130</answer>",
    ],
)
def test_is_empty_thought_positive(text: str) -> None:
    assert is_empty_thought(text)


@pytest.mark.parametrize(
    "text",
    [
        "<think>Let me count: 3.</think><answer>3</answer>",
        "<think> . </think><answer>3</answer>",
        "<think>x</think><think></think><answer>3</answer>",
        "<answer>3</answer>",
        "<think>\n\n<answer>3</answer>",
        "",
    ],
)
def test_is_empty_thought_negative(text: str) -> None:
    assert not is_empty_thought(text)


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({k: v for k, v in COT_RECORD.items() if k != "process"}, "field 'process' is missing"),
        ({**COT_RECORD, "process": None}, "field 'process' is missing"),
        ({**COT_RECORD, "process": "Let me count ... 3."}, "field 'process' has no <think>…</think> block"),
        ({**COT_RECORD, "process": "<think>a</think><think>b</think>"}, "field 'process' has 2 <think>…</think>"),
        ({**COT_RECORD, "process": ["<think>a</think>"]}, "field 'process' must be a string"),
    ],
)
def test_record_without_one_thought_names_file_record_and_field(tmp_path: Path, bad: Any, message: str) -> None:
    good = records(3)
    src = write_json(tmp_path / "in.json", [*good[:2], bad, good[2]])
    out_path = tmp_path / "out.json"
    with pytest.raises(RecordError, match=re.escape(f"{src} record 2: {message}")):
        drop_thoughts_file(src, out_path, probability=0.5, seed=0)
    assert not out_path.exists()

    src = write_jsonl(tmp_path / "in.jsonl", [*good[:2], bad])
    with pytest.raises(RecordError, match=re.escape(f"{src} line 3: {message}")):
        drop_thoughts_file(src, tmp_path / "out.jsonl", probability=0.5, seed=0)


def test_bad_arguments(tmp_path: Path) -> None:
    src = write_json(tmp_path / "in.json", records(2))
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match="probability"):
            drop_thoughts_file(src, tmp_path / "out.json", probability=p, seed=0)
    with pytest.raises(ValueError, match="suffix"):
        drop_thoughts_file(src, tmp_path / "out.jsonl", probability=0.5, seed=0)
    with pytest.raises(RecordError, match="expected a list of records"):
        obj = write_json(tmp_path / "obj.json", COT_RECORD)
        drop_thoughts_file(obj, tmp_path / "o.json", probability=0.5, seed=0)
    with pytest.raises(RecordError, match="not found"):
        drop_thoughts_file(tmp_path / "missing.json", tmp_path / "o.json", probability=0.5, seed=0)
