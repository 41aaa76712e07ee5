"""SEED-Bench-R1 and MMVU readers, their prompts (golden strings written out by hand) and the dispatcher."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from data_pipelines.formats import (
    load_benchmark_samples,
    load_mmvu,
    load_samples,
    load_seed_bench_r1,
    record_format,
)
from data_pipelines.prompts import build_prompt_text
from data_pipelines.schema import RecordError, Sample

# Made-up records in the shapes the datasets ship: SEED-Bench-R1 annotation rows and MMVU validation.json rows.
SEED_VAL = {
    "sample_id": "sbr1_l3_000417",
    "video_id": "0f3c9a2e-demo",
    "video_source": "Ego4D",
    "video_basename": "sbr1_l3_000417.mp4",
    "current_observation_basename": "sbr1_l3_000417.png",
    "domain": "Hobbies",
    "scenario": "gardening",
    "task_goal": "repot the plant",
    "question": "Considering the progress shown in the video and my current observation shown in the image, "
    "what action should I take next in order to repot the plant?",
    "choice_a": "water plant",
    "choice_b": "put soil in pot",
    "choice_c": "pick up trowel",
    "choice_d": "remove plant from pot",
    "golden_choice_idx": "B",
    "answer": "put soil in pot",
    "task_start_frame": 0,
    "current_observation_frame": 1210,
    "task_progress_metadata": [
        {"narration_text": "pick up pot", "start_frame": 30, "stop_frame": 58},
        {"narration_text": "remove plant from pot", "start_frame": 402, "stop_frame": 470},
    ],
}
SEED_TRAIN = {
    "sample_id": "sbr1_train_031337",
    "video_source": "EpicKitchens",
    "video_basename": "sbr1_train_031337.mp4",
    "current_observation_basename": "sbr1_train_031337.png",
    "question": "Considering the progress shown in the video and my current observation shown in the image, "
    "what action should I take next in order to make tea?",
    "answer": "pour water into mug",
    "negative_answers": ["open tea box", "turn off kettle", "take teabag", "wash spoon"],
    "task_progress_metadata": [{"narration_text": "fill kettle", "start_frame": 12, "stop_frame": 95}],
}
MMVU_MC = {
    "id": "validation_9001",
    "video": "https://huggingface.co/datasets/yale-nlp/MMVU/resolve/main/videos/Mechanics/99.mp4",
    "youtube_url": "https://www.youtube.com/watch?v=XXXXXXXXXXX",
    "question_type": "multiple-choice",
    "metadata": {
        "subject": "Mechanics",
        "textbook": "Some Physics Textbook, 3rd Edition",
        "knowledge": ["https://en.wikipedia.org/wiki/Momentum"],
        "rationale": "The carts stick together ...",
    },
    "question": "Which quantity is conserved during the collision shown in the video?",
    "choices": {
        "A": "kinetic energy",
        "B": "linear momentum",
        "C": "temperature",
        "D": "angular velocity",
        "E": "none of the above",
    },
    "answer": "B",
}
MMVU_OPEN = {
    "id": "validation_9002",
    "video": "https://huggingface.co/datasets/yale-nlp/MMVU/resolve/main/videos/Art/98.mp4",
    "youtube_url": "https://www.youtube.com/watch?v=YYYYYYYYYYY",
    "question_type": "open-ended",
    "metadata": {
        "subject": "Art",
        "textbook": "Some Film Handbook",
        "knowledge": ["https://en.wikipedia.org/wiki/Match_cut"],
        "rationale": "...",
    },
    "question": "Which cinematic technique is used in the video?",
    "choices": {"A": "", "B": "", "C": "", "D": "", "E": ""},
    "answer": "Match cut",
}
VIDEO_R1_MC = {
    "problem_id": 1,
    "problem": "What does the man do right after closing the laptop?",
    "data_type": "video",
    "problem_type": "multiple choice",
    "options": ["A. He stands up", "B. He drinks water", "C. He waves", "D. He reads a book"],
    "solution": "<answer>A</answer>",
    "path": "./clips/clip_0001.mp4",
}

# Rendered prompts as GRPO-CARE's SEED-Bench-R1 evaluation and MMVU's evaluation build them, written out by hand.
SEED_EVAL_PROMPT = """Considering the progress shown in the video and my current observation shown in the image, what action should I take next in order to make tea?Options:
A. pour water into mug
B. open tea box
C. turn off kettle
D. take teabag

Please think about this question as if you were a human pondering deeply. Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', 'let's break it down', etc, or other natural language thought expressions It's encouraged to include self-reflection or verification in the reasoning process. Provide your detailed reasoning between the <think> and </think> tags, and then give your final answer between the <answer> and </answer> tags. Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags."""  # noqa: E501
SEED_TRAIN_PROMPT = """Considering the progress shown in the video and my current observation shown in the image, what action should I take next in order to make tea?Options:
A. pour water into mug
B. open tea box
C. turn off kettle
D. take teabag

Please think about this question as if you were a human pondering deeply. Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', 'let's break it down', etc, or other natural language thought expressions It's encouraged to include self-reflection or verification in the reasoning process. Provide your detailed reasoning between the <think> </think> tags, and then give your final answer between the <answer> </answer> tags. Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags."""  # noqa: E501
MMVU_MC_COT_PROMPT = """
Question: Which quantity is conserved during the collision shown in the video?
A: kinetic energy
B: linear momentum
C: temperature
D: angular velocity
E: none of the above

Answer the given multiple-choice question step by step. Begin by explaining your reasoning process clearly. Conclude by stating the final answer using the following format: 'Therefore, the final answer is: $LETTER' (without quotes), where $LETTER is one of the options. Think step by
step before answering."""  # noqa: E501
MMVU_OPEN_COT_PROMPT = """
Question: Which cinematic technique is used in the video?

Answer the given question step by step. Begin by explaining your reasoning process clearly. Conclude by stating the final answer using the following format: 'Therefore, the final answer is: 'Answer: $ANSWER' (without quotes), where $ANSWER is the final answer of the question. Think step by step
before answering."""  # noqa: E501
MMVU_MC_DIRECT_PROMPT = """
Question: Which quantity is conserved during the collision shown in the video?
A: kinetic energy
B: linear momentum
C: temperature
D: angular velocity
E: none of the above

Do not generate any intermediate reasoning process. Answer directly with the option letter from the given choices.
"""
MMVU_OPEN_DIRECT_PROMPT = """
Question: Which cinematic technique is used in the video?

Do not generate any intermediate reasoning process. Directly output the final short answer.
"""
MMVU_MC_VIDEO_R1_PROMPT = """Which quantity is conserved during the collision shown in the video?Options:
A. kinetic energy
B. linear momentum
C. temperature
D. angular velocity
E. none of the above

Please think about this question as if you were a human pondering deeply. Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', 'let's break it down', etc, or other natural language thought expressions It's encouraged to include self-reflection or verification in the reasoning process. Provide your detailed reasoning between the <think> and </think> tags, and then give your final answer between the <answer> and </answer> tags. Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags."""  # noqa: E501


def touch(path: Path) -> Path:
    """A non-empty stand-in media file (readers check existence and size, never decode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not decoded by readers")
    return path


def write_json(path: Path, records: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=2), encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def without(record: dict, key: str) -> dict:
    return {k: v for k, v in record.items() if k != key}


def one_line(error: pytest.ExceptionInfo[RecordError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.fixture
def seed_root(tmp_path: Path) -> Path:
    """A SEED-Bench-R1 data root with the media of SEED_VAL and SEED_TRAIN."""
    root = tmp_path / "SEED-Bench-R1"
    for record in (SEED_VAL, SEED_TRAIN):
        touch(root / "videos" / record["video_source"] / record["video_basename"])
        touch(root / "images" / record["video_source"] / record["current_observation_basename"])
    (root / "annotations").mkdir()
    return root


@pytest.fixture
def mmvu_root(tmp_path: Path) -> Path:
    """An MMVU HF-dataset folder: videos/<Subject>/<n>.mp4 next to where validation.json goes."""
    root = tmp_path / "MMVU"
    touch(root / "videos" / "Mechanics" / "99.mp4")
    touch(root / "videos" / "Art" / "98.mp4")
    return root


# --- SEED-Bench-R1 ------------------------------------------------------------------------------


def test_seed_validation_row(seed_root: Path) -> None:
    path = write_jsonl(seed_root / "annotations" / "validation_L3.jsonl", [SEED_VAL])
    (sample,) = load_seed_bench_r1(path)
    assert sample.sample_id == "sbr1_l3_000417" and sample.origin == f"{path}#1"
    assert sample.problem == SEED_VAL["question"] and sample.problem_type == "multiple choice"
    assert sample.options == ("A. water plant", "B. put soil in pot", "C. pick up trowel", "D. remove plant from pot")
    assert sample.solution == "<answer>B</answer>" and sample.answer == "B"
    assert sample.data_type == "video"
    assert sample.media_path == (seed_root / "videos" / "Ego4D" / "sbr1_l3_000417.mp4").absolute()
    assert sample.extra_images == ((seed_root / "images" / "Ego4D" / "sbr1_l3_000417.png").absolute(),)
    assert sample.extra["domain"] == "Hobbies" and sample.extra["answer"] == "put soil in pot"
    assert not {"question", "choice_a", "golden_choice_idx"} & sample.extra.keys()


def test_seed_training_row_draws_three_negatives_with_a_seeded_shuffle(seed_root: Path) -> None:
    path = write_jsonl(seed_root / "annotations" / "training_6k.jsonl", [SEED_TRAIN])
    (sample,) = load_seed_bench_r1(path, seed=7)
    texts = [option[3:] for option in sample.options]
    assert sample.option_letters == ("A", "B", "C", "D") and all(o[1:3] == ". " for o in sample.options)
    assert texts[ord(sample.answer) - ord("A")] == SEED_TRAIN["answer"]
    assert sample.solution == f"<answer>{sample.answer}</answer>"
    assert len(set(texts)) == 4 and set(texts) - {SEED_TRAIN["answer"]} < set(SEED_TRAIN["negative_answers"])
    assert "negative_answers" not in sample.extra and sample.extra["answer"] == SEED_TRAIN["answer"]
    # The documented draw: random.Random(f"{seed}:{sample_id}"), 3 negatives then a shuffle with the answer.
    rng = random.Random("7:sbr1_train_031337")
    expected = [*rng.sample(SEED_TRAIN["negative_answers"], 3), SEED_TRAIN["answer"]]
    rng.shuffle(expected)
    assert texts == expected
    # Same seed, same options, whatever the file order or limit; other seeds give other draws.
    other = {**SEED_TRAIN, "sample_id": "sbr1_train_000001"}
    reordered = write_jsonl(seed_root / "annotations" / "reordered.jsonl", [other, SEED_TRAIN])
    assert load_seed_bench_r1(reordered, seed=7)[1].options == sample.options
    assert load_seed_bench_r1(path, seed=7, limit=1)[0].options == sample.options
    draws = {load_seed_bench_r1(path, seed=s)[0].options for s in range(12)}
    assert len(draws) > 1


def test_seed_training_row_without_sample_id_is_keyed_by_record_index(seed_root: Path) -> None:
    path = write_json(seed_root / "annotations" / "train.json", [without(SEED_TRAIN, "sample_id")])
    (sample,) = load_seed_bench_r1(path, seed=3)
    rng = random.Random("3:#0")
    expected = [*rng.sample(SEED_TRAIN["negative_answers"], 3), SEED_TRAIN["answer"]]
    rng.shuffle(expected)
    assert [o[3:] for o in sample.options] == expected and sample.sample_id == f"{path}#0"


def test_seed_training_row_counts_duplicate_negatives_once(seed_root: Path) -> None:
    record = {**SEED_TRAIN, "negative_answers": ["open tea box", "open tea box", "turn off kettle", "take teabag"]}
    path = write_jsonl(seed_root / "annotations" / "train.jsonl", [record])
    (sample,) = load_seed_bench_r1(path)
    texts = sorted(o[3:] for o in sample.options)
    assert texts == sorted(["pour water into mug", "open tea box", "turn off kettle", "take teabag"])


def test_seed_empty_progress_is_an_image_only_sample(tmp_path: Path) -> None:
    root = tmp_path / "sbr1"
    image = touch(root / "images" / "EpicKitchens" / "sbr1_train_031337.png")
    record = {**SEED_TRAIN, "task_progress_metadata": []}
    path = write_jsonl(root / "annotations" / "training_6k.jsonl", [record])  # no video file exists
    (sample,) = load_seed_bench_r1(path)
    assert sample.data_type == "image" and sample.media_path == image.absolute() and sample.extra_images == ()


def test_seed_media_root_overrides_the_annotation_grandparent(seed_root: Path, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "elsewhere" / "validation_L3.jsonl", [SEED_VAL])
    where = f"{path} line 1: field 'current_observation_basename': media file"
    with pytest.raises(RecordError, match=re.escape(where)):
        load_seed_bench_r1(path)
    (sample,) = load_seed_bench_r1(path, media_root=seed_root)
    assert sample.media_path == (seed_root / "videos" / "Ego4D" / "sbr1_l3_000417.mp4").absolute()


def test_seed_prompts_match_the_spec(seed_root: Path) -> None:
    tea = {
        **without(SEED_TRAIN, "negative_answers"),
        "choice_a": "pour water into mug",
        "choice_b": "open tea box",
        "choice_c": "turn off kettle",
        "choice_d": "take teabag",
        "golden_choice_idx": "A",
    }
    (sample,) = load_seed_bench_r1(write_jsonl(seed_root / "annotations" / "validation_L1.jsonl", [tea]))
    assert build_prompt_text(sample, "video_r1_eval") == SEED_EVAL_PROMPT
    assert build_prompt_text(sample, "video_r1_train") == SEED_TRAIN_PROMPT


# --- MMVU ---------------------------------------------------------------------------------------


def test_mmvu_multiple_choice_and_open_ended(mmvu_root: Path) -> None:
    path = write_json(mmvu_root / "validation.json", [MMVU_MC, MMVU_OPEN])
    mc, open_ended = load_mmvu(path)
    assert mc.sample_id == "validation_9001" and mc.origin == f"{path}#0" and mc.data_type == "video"
    assert mc.problem_type == "multiple choice" and mc.problem == MMVU_MC["question"]
    assert mc.options == (
        "A. kinetic energy",
        "B. linear momentum",
        "C. temperature",
        "D. angular velocity",
        "E. none of the above",
    )
    assert mc.solution == "<answer>B</answer>" and mc.answer == "B"
    assert mc.media_path == (mmvu_root / "videos" / "Mechanics" / "99.mp4").absolute() and mc.extra_images == ()
    assert mc.extra["question_type"] == "multiple-choice" and mc.extra["metadata"]["subject"] == "Mechanics"
    assert not {"question", "choices", "answer", "video"} & mc.extra.keys()
    assert open_ended.problem_type == "free-form" and open_ended.options == ()
    assert open_ended.solution == "<answer>Match cut</answer>" and open_ended.answer == "Match cut"
    assert open_ended.media_path == (mmvu_root / "videos" / "Art" / "98.mp4").absolute()
    assert open_ended.extra["question_type"] == "open-ended"
    assert (mc.extra["discipline"], open_ended.extra["discipline"]) == ("Science", "Humanities and Social Science")


def test_mmvu_discipline_from_the_video_folder_and_unmapped_subjects(mmvu_root: Path) -> None:
    from data_pipelines.formats.mmvu import DISCIPLINES

    assert len(DISCIPLINES) == 27 and set(DISCIPLINES.values()) == {
        "Science", "Engineering", "Healthcare", "Humanities and Social Science"
    }
    folder = mmvu_root / "videos" / "Modern_Physics"
    folder.mkdir(parents=True)
    (folder / "1.mp4").write_bytes(b"not decoded here")
    no_metadata = {k: v for k, v in MMVU_MC.items() if k != "metadata"} | {"video_path": "videos/Modern_Physics/1.mp4"}
    no_metadata.pop("video", None)
    unknown = MMVU_MC | {"metadata": {"subject": "Alchemy"}}
    path = write_json(mmvu_root / "validation.json", [no_metadata, unknown])
    physics, alchemy = load_mmvu(path)
    assert physics.extra["discipline"] == "Science"
    assert alchemy.extra["discipline"] == "unmapped: Alchemy"


def test_mmvu_video_path_forms_and_media_root(mmvu_root: Path, tmp_path: Path) -> None:
    clip = mmvu_root / "videos" / "Mechanics" / "99.mp4"
    records = [
        {**without(MMVU_MC, "video"), "video_path": "videos/Mechanics/99.mp4"},  # lmms-eval copy
        {**MMVU_MC, "video": "./videos/Mechanics/99.mp4"},
        {**MMVU_MC, "video": str(clip)},
        {**MMVU_MC, "video": "https://huggingface.co/datasets/yale-nlp/MMVU/resolve/abc123/videos/Mechanics/99.mp4"},
    ]
    path = write_json(tmp_path / "data" / "validation.json", records)
    assert {s.media_path for s in load_mmvu(path, media_root=mmvu_root)} == {clip.absolute()}


def test_mmvu_multiple_choice_only_and_limit(mmvu_root: Path) -> None:
    path = write_jsonl(mmvu_root / "validation.jsonl", [MMVU_OPEN, MMVU_MC, MMVU_OPEN, MMVU_MC])
    assert [s.origin for s in load_mmvu(path, multiple_choice_only=True)] == [f"{path}#2", f"{path}#4"]
    assert [s.origin for s in load_mmvu(path, multiple_choice_only=True, limit=1)] == [f"{path}#2"]
    assert len(load_mmvu(path, limit=3)) == 3
    only_open = write_jsonl(mmvu_root / "open.jsonl", [MMVU_OPEN])
    with pytest.raises(RecordError, match="the dataset has no multiple-choice records"):
        load_mmvu(only_open, multiple_choice_only=True)


def test_mmvu_prompts_match_the_spec(mmvu_root: Path) -> None:
    mc, open_ended = load_mmvu(write_json(mmvu_root / "validation.json", [MMVU_MC, MMVU_OPEN]))
    assert build_prompt_text(mc, "mmvu_cot") == MMVU_MC_COT_PROMPT
    assert build_prompt_text(open_ended, "mmvu_cot") == MMVU_OPEN_COT_PROMPT
    assert build_prompt_text(mc, "mmvu_direct") == MMVU_MC_DIRECT_PROMPT
    assert build_prompt_text(open_ended, "mmvu_direct") == MMVU_OPEN_DIRECT_PROMPT
    assert build_prompt_text(mc, "video_r1_eval") == MMVU_MC_VIDEO_R1_PROMPT  # "MMVU (mc)", as the RL papers evaluate it


def test_mmvu_template_refuses_other_problem_types() -> None:
    sample = Sample("1", "How many?", "numerical", "text", None, (), "<answer>3</answer>", "3", "x.json#0")
    with pytest.raises(ValueError, match="template 'mmvu_cot' has no wording for problem type 'numerical'"):
        build_prompt_text(sample, "mmvu_cot")
    with pytest.raises(ValueError, match="'mmvu_cot', 'mmvu_direct'"):
        build_prompt_text(sample, "nope")


# --- dispatcher ---------------------------------------------------------------------------------


def test_record_format() -> None:
    assert record_format(VIDEO_R1_MC) == "video_r1"
    assert record_format({"problem": "q\nA x\nB y", "solution": "<answer>A</answer>", "video": "/v.mp4"}) == "video_r1"
    assert record_format(SEED_VAL) == record_format(SEED_TRAIN) == "seed_bench_r1"
    assert record_format(MMVU_MC) == record_format(MMVU_OPEN) == "mmvu"
    assert record_format({"question": "q", "answer": "a"}) is None and record_format(["x"]) is None


def test_dispatcher_picks_the_reader(seed_root: Path, mmvu_root: Path, tmp_path: Path) -> None:
    touch(tmp_path / "r1" / "clips" / "clip_0001.mp4")
    video_r1 = write_json(tmp_path / "r1" / "train.json", [VIDEO_R1_MC])
    (r1,) = load_benchmark_samples(video_r1)
    assert r1 == load_samples(video_r1)[0] and r1.extra_images == ()

    val = write_jsonl(seed_root / "annotations" / "validation_L3.jsonl", [SEED_VAL])
    assert load_benchmark_samples(val) == load_seed_bench_r1(val)
    train = write_jsonl(seed_root / "annotations" / "training_6k.jsonl", [SEED_TRAIN, SEED_TRAIN])
    assert load_benchmark_samples(train, seed=5, limit=1) == load_seed_bench_r1(train, seed=5, limit=1)

    mmvu = write_json(mmvu_root / "validation.json", [MMVU_MC, MMVU_OPEN])
    assert load_benchmark_samples(mmvu) == load_mmvu(mmvu)
    assert len(load_benchmark_samples(mmvu, multiple_choice_only=True)) == 1
    elsewhere = write_json(tmp_path / "data" / "validation.json", [MMVU_MC])
    assert load_benchmark_samples(elsewhere, media_root=mmvu_root) == load_mmvu(elsewhere, media_root=mmvu_root)

    with pytest.raises(TypeError, match=re.escape(f"{mmvu} holds mmvu records; its reader load_mmvu takes no seed")):
        load_benchmark_samples(mmvu, seed=1)


def test_dispatcher_rejects_unknown_shapes_and_empty_files(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "other.jsonl", [{"question": "q", "answer": "a"}])
    where = f"{path} line 1: unknown record shape (answer, question)"
    with pytest.raises(RecordError, match=re.escape(where)) as error:
        load_benchmark_samples(path)
    assert "SEED-Bench-R1" in one_line(error) and "MMVU" in str(error.value)
    empty = write_json(tmp_path / "empty.json", [])
    with pytest.raises(RecordError, match=re.escape(f"{empty}: the dataset has no records")):
        load_benchmark_samples(empty)


# --- errors -------------------------------------------------------------------------------------


SEED_BAD = {
    "no question": ([without(SEED_VAL, "question")], "line 1", "field 'question' is missing"),
    "golden letter out of range": (
        [SEED_VAL, {**SEED_VAL, "golden_choice_idx": "E"}],
        "line 2",
        "field 'golden_choice_idx' must be one of the letters A, B, C, D, got 'E'",
    ),
    "golden index as a number": (
        [{**SEED_VAL, "golden_choice_idx": 1}],
        "line 1",
        "field 'golden_choice_idx' must be one of the letters A, B, C, D, got 1",
    ),
    "missing choice": (
        [without(SEED_VAL, "choice_c")],
        "line 1",
        "field 'choice_c' is missing; a validation row needs choice_a to choice_d",
    ),
    "empty choice": ([{**SEED_VAL, "choice_d": " "}], "line 1", "field 'choice_d' must be a non-empty string"),
    "neither negatives nor golden letter": (
        [without(SEED_TRAIN, "negative_answers")],
        "line 1",
        "field 'negative_answers' is missing; a training row needs at least 3 wrong actions",
    ),
    "negatives not a list": (
        [{**SEED_TRAIN, "negative_answers": "open tea box"}],
        "line 1",
        "field 'negative_answers' must be a list of non-empty strings",
    ),
    "too few negatives": (
        [{**SEED_TRAIN, "negative_answers": ["open tea box", "take teabag", "open tea box"]}],
        "line 1",
        "field 'negative_answers' has 2 distinct actions, needs at least 3",
    ),
    "answer among negatives": (
        [{**SEED_TRAIN, "negative_answers": [*SEED_TRAIN["negative_answers"], "pour water into mug"]}],
        "line 1",
        "field 'negative_answers' contains the answer 'pour water into mug'; remove it",
    ),
    "training row without answer": (
        [without(SEED_TRAIN, "answer")],
        "line 1",
        "field 'answer' is missing; a training row needs the text of the correct action",
    ),
    "no progress list": (
        [without(SEED_VAL, "task_progress_metadata")],
        "line 1",
        "field 'task_progress_metadata' is missing; give the finished steps as a list",
    ),
    "progress not a list": (
        [{**SEED_VAL, "task_progress_metadata": {"narration_text": "x"}}],
        "line 1",
        "field 'task_progress_metadata' must be a list, got a object",
    ),
    "no video source": ([without(SEED_VAL, "video_source")], "line 1", "field 'video_source' is missing"),
    "no observation image": (
        [without(SEED_VAL, "current_observation_basename")],
        "line 1",
        "field 'current_observation_basename' is missing",
    ),
    "no video basename with progress": (
        [without(SEED_VAL, "video_basename")],
        "line 1",
        "field 'video_basename' is missing; a row with progress steps needs its task-progress video",
    ),
    "missing video file": (
        [{**SEED_VAL, "video_basename": "gone.mp4"}],
        "line 1",
        "field 'video_basename': media file ",
    ),
    "missing image file": (
        [{**SEED_VAL, "current_observation_basename": "gone.png"}],
        "line 1",
        "field 'current_observation_basename': media file ",
    ),
    "not an object": ([SEED_VAL, "text"], "line 2", "expected a JSON object"),
}


@pytest.mark.parametrize(("records", "where", "message"), list(SEED_BAD.values()), ids=list(SEED_BAD))
def test_seed_bad_records_name_file_record_and_field(seed_root: Path, records: list, where: str, message: str) -> None:
    path = write_jsonl(seed_root / "annotations" / "bad.jsonl", records)
    with pytest.raises(RecordError, match=re.escape(f"{path} {where}: {message}")) as error:
        load_seed_bench_r1(path)
    one_line(error)


def test_seed_missing_and_empty_media_say_what_to_do(seed_root: Path) -> None:
    path = write_jsonl(seed_root / "annotations" / "v.jsonl", [{**SEED_VAL, "video_basename": "gone.mp4"}])
    with pytest.raises(RecordError) as error:
        load_seed_bench_r1(path)
    message = one_line(error)
    assert f"{(seed_root / 'videos' / 'Ego4D' / 'gone.mp4').absolute()} not found" in message
    assert f"pass media_root=DIR where DIR is the SEED-Bench-R1 data root that holds videos/ and images/ (now {seed_root})" in message
    (seed_root / "images" / "Ego4D" / "empty.png").write_bytes(b"")
    record = {**SEED_VAL, "current_observation_basename": "empty.png"}
    path = write_jsonl(seed_root / "annotations" / "e.jsonl", [record])
    where = f"{path} line 1: field 'current_observation_basename': media file"
    with pytest.raises(RecordError, match=re.escape(where)) as error:
        load_seed_bench_r1(path)
    assert one_line(error).endswith("empty.png is empty (0 bytes); re-download or regenerate it")


MMVU_BAD = {
    "unknown question type": (
        [{**MMVU_MC, "question_type": "essay"}],
        "field 'question_type' is 'essay'; use one of 'multiple-choice', 'open-ended'",
    ),
    "no question type": ([without(MMVU_MC, "question_type")], "field 'question_type' is missing; use one of"),
    "no question": ([without(MMVU_OPEN, "question")], "field 'question' is missing"),
    "choices not an object": ([{**MMVU_MC, "choices": ["kinetic energy"]}], "field 'choices' must be an object like"),
    "choice letters out of order": (
        [{**MMVU_MC, "choices": {"A": "x", "C": "y"}}],
        "field 'choices' has keys A, C; label the options A, B in order",
    ),
    "empty choice in multiple choice": (
        [{**MMVU_MC, "choices": {**MMVU_MC["choices"], "C": ""}}],
        "field 'choices' option C must be a non-empty string in a multiple-choice record",
    ),
    "answer not a choice letter": (
        [{**MMVU_MC, "answer": "linear momentum"}],
        "field 'answer' must be one of the choice letters A, B, C, D, E, got 'linear momentum'",
    ),
    "empty open-ended answer": ([{**MMVU_OPEN, "answer": ""}], "field 'answer' must be a non-empty string"),
    "no video": ([without(MMVU_MC, "video")], "field 'video' is missing; give the clip as"),
    "URL without resolve part": (
        [{**MMVU_MC, "video": "https://example.com/clip.mp4"}],
        "field 'video': cannot map URL 'https://example.com/clip.mp4' to a local file",
    ),
    "missing video file": (
        [{**MMVU_MC, "video_path": "videos/Mechanics/gone.mp4"}],
        "field 'video_path': media file ",
    ),
    "not an object": ([MMVU_MC, 3], "expected a JSON object"),
}


@pytest.mark.parametrize(("records", "message"), list(MMVU_BAD.values()), ids=list(MMVU_BAD))
def test_mmvu_bad_records_name_file_record_and_field(mmvu_root: Path, records: list, message: str) -> None:
    path = write_json(mmvu_root / "bad.json", records)
    where = f"record {len(records) - 1}"
    with pytest.raises(RecordError, match=re.escape(f"{path} {where}: {message}")) as error:
        load_mmvu(path)
    one_line(error)
