"""Upstream EgoPlan-Bench / EgoPlan-Bench2 rows given to the SEED-Bench-R1 reader: one error naming every field
SEED-Bench-R1 adds that the row lacks, and nothing guessed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from data_pipelines.formats import load_benchmark_samples, load_seed_bench_r1
from data_pipelines.formats.seed_bench_r1 import ADDED_FIELDS
from data_pipelines.schema import RecordError

PROGRESS = [
    {"narration_text": "take cereal bag", "start_frame": 36, "stop_frame": 105},
    {"narration_text": "open cupboard", "start_frame": 689, "stop_frame": 760},
]
EGOPLAN_VALIDATION = {
    "sample_id": 115,
    "video_source": "EpicKitchens",
    "video_id": "P01_13",
    "task_goal": "store cereal",
    "question": "Considering the progress shown in the video and my current observation in the last frame, what "
    "action should I take next in order to store cereal?",
    "choice_a": "put cereal box into cupboard",
    "choice_b": "take cereal bag",
    "choice_c": "open cupboard",
    "choice_d": "put cereal bag into cereal box",
    "golden_choice_idx": "A",
    "answer": "put cereal box into cupboard",
    "current_observation_frame": 760,
    "task_progress_metadata": PROGRESS,
}
EGOPLAN2_TEST = {
    "sample_id": "ca6e9ec9-46ac-4a02-8034-7c31157dc52c_2",
    "domain": "Hobbies",
    "scenario": "baking",
    "task_goal": "bake pastry in the oven and set a stopwatch",
    "choice_a": "attach stopwatch",
    "choice_b": "place oven tray",
    "choice_c": "operate oven",
    "choice_d": "set stopwatch",
    "golden_choice_idx": "A",
    "answer": "attach stopwatch",
    "task_start_frame": 0,
    "current_observation_frame": 656,
    "task_progress_metadata": PROGRESS,
}


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def error_for(tmp_path: Path, record: dict[str, Any]) -> str:
    path = write_jsonl(tmp_path / "annotations" / "EgoPlan_validation.jsonl", [record])
    with pytest.raises(RecordError) as error:
        load_benchmark_samples(path)
    return str(error.value)


def test_egoplan_row_names_the_extracted_frame_and_the_cut_clip(tmp_path: Path) -> None:
    message = error_for(tmp_path, EGOPLAN_VALIDATION)
    path = tmp_path / "annotations" / "EgoPlan_validation.jsonl"
    assert message.startswith(f"{path} line 1: field 'current_observation_basename' is missing")
    assert "upstream EgoPlan row (video_id, current_observation_frame)" in message
    assert f"current_observation_basename: {ADDED_FIELDS['current_observation_basename']}" in message
    assert f"video_basename: {ADDED_FIELDS['video_basename']}" in message
    assert "question:" not in message and "video_source:" not in message
    assert "\n" not in message


def test_egoplan2_row_also_lacks_the_question_and_video_source(tmp_path: Path) -> None:
    message = error_for(tmp_path, EGOPLAN2_TEST)
    assert "field 'question' is missing: this is an upstream EgoPlan row (current_observation_frame, task_start_frame)" in message
    for key in ADDED_FIELDS:
        assert f"{key}: {ADDED_FIELDS[key]}" in message


def test_row_without_progress_needs_no_clip(tmp_path: Path) -> None:
    message = error_for(tmp_path, {**EGOPLAN_VALIDATION, "task_progress_metadata": []})
    assert "current_observation_basename:" in message and "video_basename:" not in message


def test_seed_bench_r1_row_keeping_the_upstream_fields_still_loads(tmp_path: Path) -> None:
    record = {**EGOPLAN_VALIDATION, "video_basename": "115.mp4", "current_observation_basename": "115.png"}
    for folder, name in (("videos", "115.mp4"), ("images", "115.png")):
        media = tmp_path / folder / "EpicKitchens" / name
        media.parent.mkdir(parents=True)
        media.write_bytes(b"media")
    (sample,) = load_seed_bench_r1(write_jsonl(tmp_path / "annotations" / "validation_L1.jsonl", [record]))
    assert sample.answer == "A" and sample.media_path.name == "115.mp4" and sample.extra_images[0].name == "115.png"
