"""The TimeSearch-R record reader: each question type, shape detection and every refusal."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from data_pipelines.formats import load_benchmark_samples, load_timesearch_r, record_format
from data_pipelines.prompts import question_with_options
from data_pipelines.record_files import MediaNotFoundError
from data_pipelines.schema import RecordError
from data_pipelines.synthetic.mp4 import write_mp4

MC = {
    "id": "haystack_17",
    "video": "haystack/v17.mp4",
    "question": "What colour is the cup the man lifts?\nA. red\nB. green\nC. blue\nD. yellow",
    "type": "multiple_choice",
    "target": {"answer": "C. blue"},
    "duration": 1820.5,
    "source": "LongVideoHaystack",
}
OPEN = {
    "id": "marathon_3",
    "video": "marathon/v3.mp4",
    "question": "What does the woman put in the oven?",
    "type": "open_ended",
    "target": {"answer": "a tray of cookies"},
}
GROUNDING = {
    "id": "charades_9",
    "video": "charades/v9.mp4",
    "question": "When does the person open the door?",
    "type": "grounding",
    "target": {"answer": '{"start_time": 12.5, "end_time": 30}'},
    "duration": 42,
}
SEQUENCE = {
    "id": "seq_1",
    "video": "haystack/v17.mp4",
    "question": "Order the events: (a) he sits (b) he stands (c) he leaves",
    "type": "sequence",
    "target": {"answer": "(b)(a)(c)"},
}
VIDEOS = ("haystack/v17.mp4", "marathon/v3.mp4", "charades/v9.mp4")


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "videos"
    frames = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    for name in VIDEOS:
        write_mp4(root / name, frames, 2.0)
    return root


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def load_one(tmp_path: Path, data_root: Path, record: Any) -> None:
    load_timesearch_r(write_jsonl(tmp_path / "bad.jsonl", [MC, record]), media_root=data_root)


def test_each_type_from_jsonl(tmp_path: Path, data_root: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [MC, OPEN, GROUNDING, SEQUENCE])
    mc, open_ended, grounding, sequence = load_timesearch_r(path, media_root=data_root)

    assert mc.sample_id == "haystack_17" and mc.origin == f"{path}#1"
    assert (mc.problem_type, mc.answer, mc.solution) == ("multiple choice", "C", "<answer>C</answer>")
    assert mc.options == ("A. red", "B. green", "C. blue", "D. yellow")
    assert mc.problem == MC["question"] and question_with_options(mc) == MC["question"]
    assert mc.media_path == (data_root / "haystack" / "v17.mp4").absolute() and mc.data_type == "video"
    assert mc.extra["duration"] == 1820.5 and mc.extra["type"] == "multiple_choice"
    assert mc.extra["source"] == "LongVideoHaystack" and mc.extra["target"] == {"answer": "C. blue"}

    assert (open_ended.problem_type, open_ended.answer, open_ended.options) == ("free-form", "a tray of cookies", ())
    assert "duration" not in open_ended.extra and open_ended.extra["type"] == "open_ended"

    assert grounding.problem_type == "grounding" and grounding.extra["duration"] == 42.0
    assert json.loads(grounding.answer) == {"start_time": 12.5, "end_time": 30}

    assert (sequence.problem_type, sequence.answer) == ("sequence", "(b)(a)(c)")
    assert sequence.media_path == mc.media_path


def test_json_list_type_default_and_options_variants(tmp_path: Path, data_root: Path) -> None:
    untyped = {k: v for k, v in MC.items() if k not in ("type", "id")}
    untyped["question"] = "Steps shown:\nA. enter\nB. wave\nC. sit\nWhich hand waves?\n(A) left\n(B) right"
    untyped["target"] = {"answer": "B"}
    grounding_object = {**GROUNDING, "target": {"answer": {"start_time": 0, "end_time": 4.0}}}
    path = tmp_path / "eval.json"
    path.write_text(json.dumps([untyped, grounding_object]))

    mc, grounding = load_timesearch_r(path, media_root=data_root)
    assert mc.problem_type == "multiple choice" and mc.extra["type"] == "multiple_choice"
    assert mc.options == ("A. left", "B. right") and mc.answer == "B" and mc.sample_id == f"{path}#0"
    assert json.loads(grounding.answer) == {"start_time": 0, "end_time": 4.0}


def test_media_root_defaults_to_the_file_directory(tmp_path: Path, data_root: Path) -> None:
    path = write_jsonl(data_root / "train.jsonl", [OPEN, MC])
    assert [s.sample_id for s in load_timesearch_r(path, limit=1)] == ["marathon_3"]


def test_detected_by_shape_and_dispatched(tmp_path: Path, data_root: Path) -> None:
    assert record_format(MC) == record_format(GROUNDING) == "timesearch_r"
    samples = load_benchmark_samples(write_jsonl(tmp_path / "t.jsonl", [MC, SEQUENCE]), media_root=data_root)
    assert [s.problem_type for s in samples] == ["multiple choice", "sequence"]


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"problem": "q", "problem_type": "free-form", "solution": "<answer>x</answer>", "target": {}}, "video_r1"),
        ({"problem": "q\nA x\nB y", "solution": "<answer>A</answer>", "question": "q", "target": {}}, "video_r1"),
        ({"question": "q", "question_type": "open-ended", "choices": {}, "answer": "a", "target": {}}, "mmvu"),
        ({"question": "q", "golden_choice_idx": 1, "target": {}}, "seed_bench_r1"),
        ({"question": "q", "answer": "a"}, None),
    ],
)
def test_other_formats_are_never_taken_for_timesearch_r(record: dict[str, Any], expected: str | None) -> None:
    assert record_format(record) == expected


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"question": None}, "field 'question' is missing"),
        ({"target": None}, "field 'target' is missing"),
        ({"target": {"label": "C"}}, "field 'target' is {'label': 'C'}"),
        ({"type": "multi_choice"}, "field 'type' is 'multi_choice'; use one of 'multiple_choice'"),
        ({"target": {"answer": "(C)"}}, "must start with the option letter"),
        ({"target": {"answer": "E"}}, "letter 'E' is not among the options A, B, C, D"),
        ({"duration": "30s"}, "field 'duration' must be the video length in seconds"),
        ({"duration": 0}, "field 'duration' must be the video length in seconds"),
        ({"video": None}, "field 'video' is missing"),
        ({"video": "../outside.mp4"}, "field 'video': '../outside.mp4' points outside the data root"),
        ({"type": "open_ended", "target": {"answer": "  "}}, "field 'target.answer' must be a non-empty string"),
        ({"type": "sequence", "target": {"answer": "b, a, c"}}, "sequence record must list the order"),
        ({"type": "grounding", "target": {"answer": '{"start_time": 9, "end_time": 3}'}}, "grounding record"),
        ({"type": "grounding", "target": {"answer": "12.5, 30"}}, "grounding record"),
        ({"type": "grounding", "target": {"answer": '{"start_time": true, "end_time": 3}'}}, "grounding record"),
    ],
)
def test_bad_record_names_file_line_and_field(
    tmp_path: Path, data_root: Path, change: dict[str, Any], message: str
) -> None:
    record = {k: v for k, v in {**MC, **change}.items() if v is not None}
    with pytest.raises(RecordError, match=re.escape(f"{tmp_path / 'bad.jsonl'} line 2: ")) as error:
        load_one(tmp_path, data_root, record)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_missing_video_and_non_object(tmp_path: Path, data_root: Path) -> None:
    with pytest.raises(MediaNotFoundError, match=r"line 2: field 'video': media file .*nowhere\.mp4 not found"):
        load_one(tmp_path, data_root, {**MC, "video": "haystack/nowhere.mp4"})
    (data_root / "empty.mp4").write_bytes(b"")
    with pytest.raises(RecordError, match=r"line 2: field 'video': media file .*empty\.mp4 is empty"):
        load_one(tmp_path, data_root, {**MC, "video": "empty.mp4"})
    with pytest.raises(RecordError, match="line 2: expected a JSON object with id, video, question"):
        load_one(tmp_path, data_root, ["not", "a", "record"])


def test_absolute_video_path_outside_the_root_is_kept(tmp_path: Path, data_root: Path) -> None:
    elsewhere = write_mp4(tmp_path / "elsewhere.mp4", np.zeros((2, 16, 16, 3), dtype=np.uint8), 1.0)
    path = write_jsonl(tmp_path / "t.jsonl", [{**OPEN, "video": str(elsewhere)}])
    (sample,) = load_timesearch_r(path, media_root=data_root)
    assert sample.media_path == elsewhere


def test_empty_file_and_bad_limit(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="the dataset has no records"):
        load_timesearch_r(write_jsonl(tmp_path / "empty.jsonl", []))
    with pytest.raises(ValueError, match="limit must be a positive number"):
        load_timesearch_r(tmp_path / "empty.jsonl", limit=0)
