"""The synthetic generator: determinism, decodability, record format, and answers read back from pixels."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import av
import decord
import numpy as np
import pytest

from data_pipelines.formats import load_samples
from data_pipelines.schema import option_letter
from data_pipelines.synthetic.generator import SyntheticDataset, make_dataset
from data_pipelines.synthetic.scenes import Difficulty, SceneObject, make_instance, shape_mask
from data_pipelines.synthetic.vocabulary import (
    BACKGROUND,
    COLORS,
    DIRECTIONS,
    MAX_COUNT,
    QUESTIONS,
    SHAPES,
    TASKS,
    THOUGHTS,
)

PROBLEM_TYPES = {
    "color": "multiple choice",
    "direction": "multiple choice",
    "count": "numerical",
    "order": "multiple choice",
    "colors_present": "multi-answer",
}
RECORD_KEYS = {
    "problem_id", "problem", "data_type", "problem_type", "options", "solution", "process", "path", "data_source",
    "task",
}


# --- helpers ------------------------------------------------------------------------------------


def decode_decord(path: Path) -> np.ndarray:
    reader = decord.VideoReader(str(path))
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def load_records(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def option_text(record: dict, letter: str) -> str:
    return next(o.split(". ", 1)[1] for o in record["options"] if option_letter(o) == letter)


def answer_letters(record: dict) -> list[str]:
    return re.fullmatch(r"<answer>(.*)</answer>", record["solution"]).group(1).split(",")


def counted_shape(record: dict) -> str:
    return next(s for s in SHAPES if record["problem"] == QUESTIONS["count"].format(shape=s))


def components(mask: np.ndarray) -> list[np.ndarray]:
    """4-connected components of a boolean image, as arrays of (y, x) pixels."""
    seen = np.zeros_like(mask)
    height, width = mask.shape
    found = []
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        stack, pixels = [(y0, x0)], []
        while stack:
            y, x = stack.pop()
            pixels.append((y, x))
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        found.append(np.array(pixels))
    return found


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


def blobs(frame: np.ndarray, object_size: int) -> list[tuple[str, str, np.ndarray]]:
    """``(colour, shape, centroid_yx)`` of every shape in a decoded frame.

    Shapes are the connected regions brighter than the background (luma is not subsampled, so
    outlines stay sharp); colour is the palette entry nearest the region's median; shape comes from
    the corners of the bounding box: a square fills its top corners, a triangle only its bottom
    ones, a circle none.
    """
    pixels_rgb = frame.astype(int)
    palette = np.array(list(COLORS.values()))
    threshold = (luma(np.array(BACKGROUND)) + luma(palette).min()) / 2
    foreground = luma(pixels_rgb) > threshold
    found = []
    for pixels in components(foreground):
        if len(pixels) < object_size**2 // 5:
            continue
        low, high = pixels.min(0), pixels.max(0)
        box = np.zeros(high - low + 1, dtype=bool)
        box[pixels[:, 0] - low[0], pixels[:, 1] - low[1]] = True
        top = box[:2, :2].mean() + box[:2, -2:].mean()
        bottom = box[-2:, :2].mean() + box[-2:, -2:].mean()
        shape = "square" if top > 0 else "triangle" if bottom >= 1 else "circle"
        median = np.median(pixels_rgb[pixels[:, 0], pixels[:, 1]], axis=0)
        color = list(COLORS)[int(np.linalg.norm(palette - median, axis=1).argmin())]
        found.append((color, shape, pixels.mean(0)))
    return found


def check_answer_from_pixels(record: dict, frames: np.ndarray, object_size: int) -> None:
    """Recompute the record's answer from the decoded frames alone and compare."""
    first, last = blobs(frames[0], object_size), blobs(frames[-1], object_size)
    task, letters = record["task"], answer_letters(record)
    if task in ("color", "direction"):
        def unmatched(blobs_a: list, blobs_b: list) -> list:
            return [a for a in blobs_a if not any(a[:2] == b[:2] and np.abs(a[2] - b[2]).max() < 1 for b in blobs_b)]

        starts, ends = unmatched(first, last), unmatched(last, first)
        assert len(starts) == len(ends) == 1 and starts[0][:2] == ends[0][:2], (record, first, last)
        color, shape, start = starts[0]
        dy, dx = ends[0][2] - start
        if task == "color":
            assert [color] == [option_text(record, letter) for letter in letters]
            assert record["problem"] == QUESTIONS["color"].format(shape=shape)
        else:
            seen = "right" if dx > 2 else "left" if dx < -2 else "down" if dy > 2 else "up"
            assert min(abs(dx), abs(dy)) < 1 and max(abs(dx), abs(dy)) > 2
            assert [seen] == [option_text(record, letter) for letter in letters]
            assert record["problem"] == QUESTIONS["direction"].format(color=color, shape=shape)
    elif task == "count":
        shape = counted_shape(record)
        assert letters == [str(sum(s == shape for _, s, _ in first))]
        assert len(first) == len(last)
    elif task == "order":
        counts = [len(blobs(frame, object_size)) for frame in frames]
        start = next(t for t, n in enumerate(counts) if n)
        assert counts[start] == 1 and counts == sorted(counts), counts
        color, shape, _ = blobs(frames[start], object_size)[0]
        assert [f"{color} {shape}"] == [option_text(record, letter) for letter in letters]
    else:
        present = sorted({color for color, _, _ in last})
        assert present == sorted(option_text(record, letter) for letter in letters)
        assert letters == sorted(letters)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    return make_dataset(tmp_path_factory.mktemp("synthetic") / "a", n_train=50, n_test=20, seed=3)


@pytest.fixture(scope="module")
def hard_dataset(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    difficulty = Difficulty(frames=6, size=96, fps=6.0, distractors=3, speed=1.5, object_size=16)
    out_dir = tmp_path_factory.mktemp("synthetic") / "hard"
    return make_dataset(out_dir, n_train=30, n_test=10, seed=5, difficulty=difficulty)


# --- tests --------------------------------------------------------------------------------------


def test_same_seed_gives_identical_json_and_frames(dataset: SyntheticDataset, tmp_path: Path) -> None:
    again = make_dataset(tmp_path / "b", n_train=50, n_test=20, seed=3)
    for name in ("train.json", "test.json", "dataset_info.json"):
        assert (dataset.root / name).read_bytes() == (again.root / name).read_bytes()
    for record in load_records(dataset.train_path) + load_records(dataset.test_path):
        assert np.array_equal(decode_decord(dataset.root / record["path"]), decode_decord(again.root / record["path"]))
    other = make_dataset(tmp_path / "c", n_train=50, n_test=20, seed=4)
    assert other.train_path.read_bytes() != dataset.train_path.read_bytes()


def test_train_and_test_share_no_clip(dataset: SyntheticDataset) -> None:
    train = {decode_decord(dataset.root / r["path"]).tobytes() for r in load_records(dataset.train_path)}
    test = [decode_decord(dataset.root / r["path"]).tobytes() for r in load_records(dataset.test_path)]
    assert not train.intersection(test)


def test_clips_decode_with_decord_and_pyav(hard_dataset: SyntheticDataset) -> None:
    for record in load_records(hard_dataset.train_path)[:10]:
        path = hard_dataset.root / record["path"]
        reader = decord.VideoReader(str(path))
        assert len(reader) == 6 and reader.get_avg_fps() == pytest.approx(6.0)
        by_decord = reader.get_batch(list(range(6))).asnumpy()
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.average_rate == 6
            by_pyav = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(stream)])
        assert by_decord.shape == by_pyav.shape == (6, 96, 96, 3)
        assert np.abs(by_decord.astype(int) - by_pyav).max() <= 2


@pytest.mark.parametrize("which", ["dataset", "hard_dataset"])
def test_answers_are_determined_by_the_pixels(which: str, request: pytest.FixtureRequest) -> None:
    data: SyntheticDataset = request.getfixturevalue(which)
    object_size = json.loads((data.root / "dataset_info.json").read_text())["difficulty"]["object_size"]
    for record in load_records(data.train_path) + load_records(data.test_path):
        check_answer_from_pixels(record, decode_decord(data.root / record["path"]), object_size)


def test_records_follow_the_video_r1_format(dataset: SyntheticDataset) -> None:
    words = {*COLORS, *DIRECTIONS, *(f"{c} {s}" for c in COLORS for s in SHAPES)}
    for split, path in (("train", dataset.train_path), ("test", dataset.test_path)):
        for index, record in enumerate(load_records(path)):
            assert set(record) == RECORD_KEYS
            assert record["problem_id"] == index and record["data_type"] == "video"
            assert record["path"] == f"./videos/{split}_{index}.mp4" and (path.parent / record["path"]).is_file()
            assert record["problem_type"] == PROBLEM_TYPES[record["task"]]
            assert record["data_source"] == f"synthetic/{record['task']}"
            thought = re.fullmatch(r"<think>(.*)</think>", record["process"]).group(1)
            template = re.escape(THOUGHTS[record["task"]]).replace(r"\{", "{").replace(r"\}", "}")
            assert re.fullmatch(re.sub(r"\{\w+\}", ".+", template), thought)
            letters = answer_letters(record)
            if record["problem_type"] == "numerical":
                assert record["options"] == [] and 1 <= int(letters[0]) <= MAX_COUNT
                assert thought == THOUGHTS["count"].format(count=letters[0], shape=counted_shape(record))
            else:
                assert [o[:3] for o in record["options"]] == ["A. ", "B. ", "C. ", "D. "]
                texts = [o[3:] for o in record["options"]]
                assert len(set(texts)) == 4 and set(texts) <= words
                assert set(letters) <= set("ABCD")
            if record["task"] == "colors_present":
                assert 2 <= len(letters) <= 3
                colors = ", ".join(option_text(record, letter) for letter in letters)
                assert thought == THOUGHTS["colors_present"].format(colors=colors)
            elif record["problem_type"] == "multiple choice":
                assert len(letters) == 1


def test_generated_files_load_as_samples(dataset: SyntheticDataset) -> None:
    samples = load_samples(dataset.train_path)
    assert len(samples) == 50
    assert samples[0].media_path == (dataset.video_dir / "train_0.mp4").absolute()
    assert {s.problem_type for s in samples} == set(PROBLEM_TYPES.values())


def test_tasks_are_balanced(dataset: SyntheticDataset, tmp_path: Path) -> None:
    for split, path in (("train", dataset.train_path), ("test", dataset.test_path)):
        tally = Counter(r["task"] for r in load_records(path))
        assert set(tally) == set(TASKS) and len(set(tally.values())) == 1
        assert dataset.counts[split] == dict(tally)
    info = json.loads((dataset.root / "dataset_info.json").read_text())
    assert info["seed"] == 3 and info["n_train"] == 50 and info["tasks"] == list(TASKS)
    only = make_dataset(tmp_path, n_train=6, n_test=2, tasks=("count", "order"))
    assert only.counts == {"train": {"count": 3, "order": 3}, "test": {"count": 1, "order": 1}}


def test_difficulty_knobs_change_the_clips(hard_dataset: SyntheticDataset) -> None:
    info = json.loads((hard_dataset.root / "dataset_info.json").read_text())
    assert info["difficulty"]["frames"] == 6 and info["difficulty"]["size"] == 96
    frames = decode_decord(hard_dataset.root / load_records(hard_dataset.test_path)[0]["path"])
    assert frames.shape == (6, 96, 96, 3)
    slow, fast = Difficulty(size=112, speed=0.5), Difficulty(size=112, speed=2.0)
    travel = [
        np.abs(np.subtract(mover.positions[-1], mover.positions[0])).max()
        for d in (slow, fast)
        for mover in [make_instance("direction", np.random.default_rng(0), d).objects[0]]
    ]
    assert travel[1] > 3 * travel[0] > 0
    crowded = make_instance("color", np.random.default_rng(0), Difficulty(distractors=4))
    assert len(crowded.objects) == 5 and sum(o.moving for o in crowded.objects) == 1


@pytest.mark.parametrize("task", TASKS)
def test_instances_keep_objects_inside_and_apart(task: str) -> None:
    difficulty = Difficulty(frames=5, size=84, distractors=2, speed=1.2)
    s = difficulty.object_size
    for seed in range(40):
        instance = make_instance(task, np.random.default_rng(seed), difficulty)
        assert instance.frames.shape == (5, 84, 84, 3) and instance.frames.dtype == np.uint8
        assert sum(o.moving for o in instance.objects) == (1 if task in ("color", "direction") else 0)
        for t in range(difficulty.frames):
            boxes = [o.positions[t] for o in instance.objects if o.appear <= t]
            for x, y in boxes:
                assert 0 <= x <= 84 - s and 0 <= y <= 84 - s
            for i, (x1, y1) in enumerate(boxes):
                for x2, y2 in boxes[i + 1 :]:
                    assert abs(x1 - x2) >= s + 2 or abs(y1 - y2) >= s + 2
        if task == "order":
            appear = [o.appear for o in instance.objects]
            assert appear.count(min(appear)) == 1 and instance.objects[0].appear == min(appear)
        if task == "count":
            assert int(instance.answer) == sum(o.shape == instance.facts["shape"] for o in instance.objects)


def test_shape_masks_differ_and_fill_as_expected() -> None:
    fills = {shape: shape_mask(shape, 14).mean() for shape in SHAPES}
    assert fills["square"] == 1.0 and 0.7 < fills["circle"] < 0.85 and 0.45 < fills["triangle"] < 0.6
    assert SceneObject("square", "red", ((0, 0), (1, 0))).moving


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frames": 1}, "frames must be at least 2"),
        ({"size": 57}, "size must be even"),
        ({"object_size": 7}, "object_size must be an even number"),
        ({"distractors": 5}, "distractors=5 does not fit"),
        ({"speed": 4.0}, "lower speed or frames"),
        ({"speed": 0.01}, "raise speed"),
        ({"fps": 0}, "fps must be positive"),
    ],
)
def test_bad_difficulty_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Difficulty(**kwargs)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown synthetic task"):
        make_instance("size", np.random.default_rng(0))
    with pytest.raises(ValueError, match="tasks must be distinct names"):
        make_dataset(tmp_path, n_train=1, n_test=1, tasks=("color", "shape"))
    with pytest.raises(ValueError, match="n_train and n_test"):
        make_dataset(tmp_path, n_train=-1, n_test=1)
