"""The opt-in claim tasks (compare, difficulty_mix, direction_fixed, colors_fixed) and the compare consistency rule."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from data_pipelines.consistency import completion_consistent, question_kinds, stated_counts, thought_answer_consistent
from data_pipelines.formats import load_samples
from data_pipelines.synthetic.claims import EASY_MAX_COUNT, FIXED_COLORS, HARD_DISTRACTORS, make_claim_instance
from data_pipelines.synthetic.generator import make_dataset
from data_pipelines.synthetic.scenes import Difficulty, TaskInstance, shape_mask
from data_pipelines.synthetic.vocabulary import BACKGROUND, COLORS, QUESTIONS, SHAPES, TASKS, corpus_lines
from vlm_rl.cli import main

DIFFICULTIES = (Difficulty(), Difficulty(distractors=4), Difficulty(size=96, object_size=16, distractors=3, frames=5))


def draw(task: str, seed: int, difficulty: Difficulty = Difficulty()):
    return make_claim_instance(task, np.random.default_rng(seed), difficulty)


def check_frames_show_only_the_objects(instance: TaskInstance, difficulty: Difficulty) -> None:
    """Every visible object's pixels carry its colour and nothing else is drawn, frame by frame."""
    s = difficulty.object_size
    for t, frame in enumerate(instance.frames):
        covered = np.zeros(frame.shape[:2], dtype=bool)
        for obj in instance.objects:
            if t < obj.appear:
                continue
            x, y = obj.positions[t]
            mask = shape_mask(obj.shape, s)
            assert np.all(frame[y : y + s, x : x + s][mask] == COLORS[obj.color])
            covered[y : y + s, x : x + s] |= mask
        assert np.all(frame[~covered] == BACKGROUND), f"frame {t} draws something no object accounts for"


def option_text(instance: TaskInstance, letter: str) -> str:
    return next(o.split(". ", 1)[1] for o in instance.options if o.startswith(f"{letter}. "))


# --- compare ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_compare_answer_follows_from_the_drawn_counts_which_never_tie(difficulty: Difficulty) -> None:
    answers = set()
    for seed in range(30):
        instance, extra = draw("compare", seed, difficulty)
        check_frames_show_only_the_objects(instance, difficulty)
        first, second = question_kinds(instance.problem)
        drawn = {shape: sum(o.shape == shape for o in instance.objects) for shape in SHAPES}
        third = next(s for s in SHAPES if s not in (first, second))
        assert drawn[third] == difficulty.distractors and drawn[first] >= 1 and drawn[second] >= 1
        assert drawn[first] != drawn[second]
        assert extra == {"counts": {first: drawn[first], second: drawn[second]}}
        assert instance.options == ("A. yes", "B. no") and instance.problem_type == "multiple choice"
        assert option_text(instance, instance.answer) == ("yes" if drawn[first] > drawn[second] else "no")
        assert instance.thought == f"I count {drawn[first]} {first}s and {drawn[second]} {second}s."
        answers.add(instance.answer)
    assert answers == {"A", "B"}


# --- the consistency rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "problem", "expected"),
    [
        ("<think>I count 3 circles and 2 squares.</think><answer>A</answer>", "Are there more circles than squares?", True),
        ("<think>I count 3 circles and 2 squares.</think><answer>B</answer>", "Are there more circles than squares?", False),
        ("<think>There are two squares and three circles.</think><answer>B. no</answer>", "Are there more squares than circles?", True),
        ("<think>There are two squares and three circles.</think><answer>A</answer>", "Are there more squares than circles?", False),
        ("<think>I see 1 triangle and 4 squares.</think><answer>(B)</answer>", None, True),
        ("<think>The circles outnumber the squares.</think><answer>A</answer>", None, None),
        ("<think>I count 3 circles.</think><answer>A</answer>", "Are there more circles than squares?", None),
        ("<think>3 circles, then 2 circles, and 1 square.</think><answer>A</answer>", None, None),
        ("<answer>A</answer>", "Are there more circles than squares?", None),
        ("<think>I count 3 circles and 2 squares.</think><answer>C</answer>", None, None),
        ("<think>I count 3 circles and 2 squares.</think>", None, None),
    ],
)
def test_consistency_of_hand_written_completions(completion: str, problem: str | None, expected: bool | None) -> None:
    assert completion_consistent(completion, problem) is expected


def test_consistency_from_counts_and_kinds() -> None:
    assert stated_counts("I count 4 squares and one circle.") == {"square": 4, "circle": 1}
    assert thought_answer_consistent({"circle": 1, "square": 4}, "B") is True
    assert thought_answer_consistent({"circle": 1, "square": 4}, "A", kinds=("square", "circle")) is True
    assert thought_answer_consistent("<think>1 circle and 4 squares</think>", "A", kinds=("square", "circle")) is True
    assert thought_answer_consistent("<think>1 circle and 4 squares</think>", "A") is False
    with pytest.raises(ValueError, match="not a compare question"):
        completion_consistent("<think>1 circle and 4 squares</think><answer>A</answer>", "What color is the shape?")


def test_generated_compare_thoughts_are_consistent_and_a_flipped_answer_is_not() -> None:
    for seed in range(10):
        instance, extra = draw("compare", seed)
        completion = f"<think>{instance.thought}</think><answer>{instance.answer}</answer>"
        flipped = f"<think>{instance.thought}</think><answer>{'B' if instance.answer == 'A' else 'A'}</answer>"
        assert completion_consistent(completion, instance.problem) is True
        assert completion_consistent(flipped, instance.problem) is False
        assert thought_answer_consistent(extra["counts"], instance.answer, kinds=question_kinds(instance.problem))


# --- difficulty_mix ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_difficulty_mix_answers_are_the_drawn_scene(difficulty: Difficulty) -> None:
    labels = []
    for seed in range(30):
        instance, extra = draw("difficulty_mix", seed, difficulty)
        check_frames_show_only_the_objects(instance, difficulty)
        assert instance.task == "difficulty_mix" and instance.problem_type == "numerical" and not instance.options
        labels.append(extra["difficulty"])
        shape = next(s for s in SHAPES if instance.problem == QUESTIONS["count"].format(shape=s))
        assert instance.answer == str(sum(o.shape == shape for o in instance.objects))
        assert instance.thought == f"I count {instance.answer} {shape}s."
        others = sum(o.shape != shape for o in instance.objects)
        if extra["difficulty"] == "easy":
            assert others == 0 and 1 <= int(instance.answer) <= EASY_MAX_COUNT
        else:
            assert extra["difficulty"] == "hard" and others >= max(HARD_DISTRACTORS, difficulty.distractors)
    assert set(labels) == {"easy", "hard"}


# --- fixed-option tasks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_direction_fixed_options_never_move_and_the_letter_is_the_movers_direction(difficulty: Difficulty) -> None:
    answers = set()
    for seed in range(30):
        instance, extra = draw("direction_fixed", seed, difficulty)
        check_frames_show_only_the_objects(instance, difficulty)
        assert extra == {} and instance.options == ("A. left", "B. right", "C. up", "D. down")
        mover = next(o for o in instance.objects if o.positions[0] != o.positions[-1])
        (dx, dy) = np.sign(np.subtract(mover.positions[-1], mover.positions[0]))
        assert option_text(instance, instance.answer) == {(-1, 0): "left", (1, 0): "right", (0, -1): "up", (0, 1): "down"}[(dx, dy)]
        assert instance.problem == QUESTIONS["direction"].format(color=mover.color, shape=mover.shape)
        answers.add(instance.answer)
    assert answers == {"A", "B", "C", "D"}


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_colors_fixed_answer_is_the_letters_of_the_colours_drawn(difficulty: Difficulty) -> None:
    for seed in range(30):
        instance, _ = draw("colors_fixed", seed, difficulty)
        check_frames_show_only_the_objects(instance, difficulty)
        assert instance.options == tuple(f"{letter}. {c}" for letter, c in zip("ABCD", FIXED_COLORS))
        drawn = {o.color for o in instance.objects}
        assert drawn <= set(FIXED_COLORS) and 2 <= len(drawn) <= 3
        letters = instance.answer.split(",")
        assert letters == sorted(letters) and {option_text(instance, x) for x in letters} == drawn
        assert instance.problem_type == "multi-answer" and instance.problem == QUESTIONS["colors_present"]


# --- datasets and the CLI ---------------------------------------------------------------------------------


def test_cli_writes_both_families_and_labels_reach_the_samples(tmp_path: Path) -> None:
    out = tmp_path / "claims"
    main(["make-data", str(out), "--n-train", "20", "--n-test", "2", "--seed", "4", "--tasks", "compare,difficulty_mix"])
    records = json.loads((out / "train.json").read_text(encoding="utf-8"))
    assert [r["task"] for r in records] == ["compare", "difficulty_mix"] * 10
    mix = [r for r in records if r["task"] == "difficulty_mix"]
    assert {r["difficulty"] for r in mix} == {"easy", "hard"}
    for record in records:
        assert record["data_type"] == "video" and (out / record["path"]).stat().st_size > 0
        if record["task"] == "compare":
            assert completion_consistent(record["process"] + record["solution"], record["problem"]) is True
    samples = load_samples(out / "train.json")
    assert [s.extra.get("difficulty") for s in samples] == [r.get("difficulty") for r in records]
    assert [s.extra.get("counts") for s in samples] == [r.get("counts") for r in records]

    again = make_dataset(tmp_path / "again", n_train=20, n_test=2, seed=4, tasks=("compare", "difficulty_mix"))
    for name in ("train.json", "test.json", "dataset_info.json", "videos/train_7.mp4"):
        assert (out / name).read_bytes() == (again.root / name).read_bytes(), name
    other = make_dataset(tmp_path / "other", n_train=20, n_test=2, seed=5, tasks=("compare", "difficulty_mix"))
    assert (out / "train.json").read_bytes() != other.train_path.read_bytes()


def test_default_dataset_and_corpus_leave_the_claim_tasks_out(tmp_path: Path) -> None:
    assert TASKS == ("color", "direction", "count", "order", "colors_present")
    lines = corpus_lines()
    assert not any(re.match(r"Are there more|[AB]\. (yes|no)$", line) for line in lines)
    plain = make_dataset(tmp_path / "plain", n_train=5, n_test=2, seed=2)
    records = json.loads(plain.train_path.read_text(encoding="utf-8"))
    assert [r["task"] for r in records] == [*TASKS]
    assert not any({"difficulty", "counts", "question_kind"} & r.keys() for r in records)


def test_the_held_out_split_keeps_its_easy_share(tmp_path: Path) -> None:
    """Test clips must differ from every train clip; easy scenes are varied enough that the test split is not
    silently filled with hard redraws."""
    make_dataset(tmp_path, n_train=600, n_test=80, seed=0, tasks=("difficulty_mix",))
    test = json.loads((tmp_path / "test.json").read_text(encoding="utf-8"))
    easy = sum(r["difficulty"] == "easy" for r in test)
    assert 28 <= easy <= 52, f"{easy} of 80 held-out items are easy"
