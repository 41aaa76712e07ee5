"""Perception data: VLM-R1 REC records and Video-R1 style box records (boxes converted to resized pixels,
refusals naming file, record and field), and the opt-in synthetic ``rec`` and ``detection`` images."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from data_pipelines.boxes import parse_box, parse_boxes, to_resized
from data_pipelines.formats import load_benchmark_samples, record_format
from data_pipelines.image_size import resized_image_size
from data_pipelines.schema import RecordError
from data_pipelines.synthetic.generator import make_dataset
from data_pipelines.synthetic.perception import SIDES, PerceptionSettings
from data_pipelines.synthetic.vocabulary import BACKGROUND, COLORS, PERCEPTION_TASKS, TASKS, corpus_lines
from vlm_rl.cli import main

SIZE = (333, 517)
QUESTION = "Please provide the bounding box coordinate of the region this sentence describes: the man in red."


def write_image(path: Path, size: tuple[int, int] = SIZE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 30, 30)).save(path)
    return path


def vlm_r1_record(box: Any = "[10, 20.5, 300, 500]", image: Any = "coco/a.png", **changes: Any) -> dict[str, Any]:
    record = {
        "id": 7,
        "image": image,
        "conversations": [{"from": "human", "value": "<image>" + QUESTION}, {"from": "gpt", "value": box}],
    }
    return {**record, **changes}


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# --- VLM-R1 REC records -------------------------------------------------------------------------------------


def test_vlm_r1_records_become_box_samples_in_resized_pixels(tmp_path: Path) -> None:
    image = write_image(tmp_path / "images" / "coco" / "a.png")
    records = [vlm_r1_record(), vlm_r1_record('{"bbox_2d": [0, 0, 333, 517], "label": "all"}', id=8)]
    path = write_jsonl(tmp_path / "rec.jsonl", records)
    assert record_format(records[0]) == "vlm_r1"
    samples = load_benchmark_samples(path, media_root=tmp_path / "images")
    resized = resized_image_size(*SIZE)
    assert resized != SIZE
    first, whole = samples
    assert (first.sample_id, first.problem_type, first.data_type) == ("7", "box", "image")
    assert first.problem == QUESTION and first.media_path == image.absolute() and first.origin == f"{path}#1"
    assert parse_box(first.answer) == pytest.approx(to_resized((10, 20.5, 300, 500), SIZE, resized), abs=0.005)
    assert first.solution == f"<answer>{first.answer}</answer>"
    assert first.extra == {"box_original": [10, 20.5, 300, 500], "image_size": list(SIZE), "resized_size": list(resized)}
    assert parse_box(whole.answer) == (0, 0, *resized)


def test_vlm_r1_reader_takes_the_image_pixel_bounds(tmp_path: Path) -> None:
    write_image(tmp_path / "coco" / "a.png")
    path = write_jsonl(tmp_path / "rec.jsonl", [vlm_r1_record("[0, 0, 333, 517]")])
    small = load_benchmark_samples(path, image_min_pixels=28 * 28, image_max_pixels=16 * 28 * 28)[0]
    resized = resized_image_size(*SIZE, min_pixels=28 * 28, max_pixels=16 * 28 * 28)
    assert parse_box(small.answer) == (0, 0, *resized) and small.extra["resized_size"] == list(resized)
    assert resized != resized_image_size(*SIZE)


def test_the_run_configs_image_bounds_reach_the_box_answers(tmp_path: Path, synthetic_video_records: Path) -> None:
    from vlm_rl.media import ImageSampling
    from vlm_rl.records import load_records

    write_image(tmp_path / "coco" / "a.png")
    path = write_jsonl(tmp_path / "rec.jsonl", [vlm_r1_record("[0, 0, 333, 517]")])
    small = load_records([str(path)], None, image=ImageSampling(min_pixels=28 * 28, max_pixels=16 * 28 * 28))[0]
    assert small.extra["resized_size"] == list(resized_image_size(*SIZE, min_pixels=28 * 28, max_pixels=16 * 28 * 28))
    assert load_records([str(path)], None)[0].extra["resized_size"] == list(resized_image_size(*SIZE))
    # readers whose answers do not depend on the image size take the same call
    assert load_records([str(synthetic_video_records)], None, image=ImageSampling(max_pixels=16 * 28 * 28))


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (vlm_r1_record("[10, 20, 340, 500]"), r"line 2: field 'conversations': box \[10, 20, 340, 500\] lies outside the 333x517 image"),
        (vlm_r1_record("[10, 20, 5, 500]"), r"line 2: field 'conversations': box .* x1 < x2"),
        (vlm_r1_record("[10, 20, 30]"), r"line 2: field 'conversations': a box answer must be one box"),
        (vlm_r1_record("the man"), r"line 2: field 'conversations': a box answer must be one box"),
        (vlm_r1_record(image="coco/missing.png"), r"line 2: field 'image': media file .*missing.png not found"),
        (vlm_r1_record(image=["coco/a.png"]), r"line 2: field 'image' must be the path of one image"),
        (vlm_r1_record(conversations=[{"from": "human", "value": "x"}]), r"line 2: field 'conversations' must be a human turn"),
        (vlm_r1_record(conversations=[{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "[1, 1, 2, 2]"}]),
         r"line 2: field 'conversations': the human turn holds no question"),
    ],
)
def test_vlm_r1_refusals_name_file_record_and_field(tmp_path: Path, record: dict, message: str) -> None:
    write_image(tmp_path / "coco" / "a.png")
    path = write_jsonl(tmp_path / "rec.jsonl", [vlm_r1_record(), record])
    with pytest.raises(RecordError, match=re.escape(str(path)) + " " + message) as info:
        load_benchmark_samples(path)
    assert "\n" not in str(info.value)


def test_an_unreadable_image_is_refused(tmp_path: Path) -> None:
    (tmp_path / "coco").mkdir()
    (tmp_path / "coco" / "a.png").write_bytes(b"not a png")
    path = write_jsonl(tmp_path / "rec.jsonl", [vlm_r1_record()])
    with pytest.raises(RecordError, match=r"rec.jsonl line 1: field 'image': cannot read the size of image"):
        load_benchmark_samples(path)


# --- Video-R1 style box records -----------------------------------------------------------------------------


def box_record(problem_type: str, answer: str, **changes: Any) -> dict[str, Any]:
    record = {
        "problem_id": 3,
        "problem": "Where is every red circle?",
        "problem_type": problem_type,
        "data_type": "image",
        "options": [],
        "solution": f"<answer>{answer}</answer>",
        "path": "./img/a.png",
    }
    return {**record, **changes}


def test_video_r1_box_and_detection_records_are_converted(tmp_path: Path) -> None:
    write_image(tmp_path / "img" / "a.png")
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps([
        box_record("box", "[1, 2, 3, 4]"),
        box_record("detection", '[[0, 0, 333, 517], {"bbox_2d": [10, 10, 20, 20], "label": "circle"}]'),
        box_record("detection", "[]"),
    ]))
    one, two, none = load_benchmark_samples(path)
    resized = resized_image_size(*SIZE)
    assert parse_box(one.answer) == pytest.approx(to_resized((1, 2, 3, 4), SIZE, resized), abs=0.005)
    assert one.extra["box_original"] == [1, 2, 3, 4]
    assert parse_boxes(two.answer) == [(0, 0, *resized), pytest.approx(to_resized((10, 10, 20, 20), SIZE, resized), abs=0.005)]
    assert two.extra["boxes_original"] == [[0, 0, 333, 517], [10, 10, 20, 20]] and two.extra["image_size"] == list(SIZE)
    assert none.answer == "[]" and none.solution == "<answer>[]</answer>"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (box_record("box", "[1, 2, 3, 600]"), r"record 0: field 'solution': box \[1, 2, 3, 600\] lies outside the 333x517 image"),
        (box_record("box", "[[1, 2, 3, 4]]"), r"record 0: field 'solution': a box answer must be one box"),
        (box_record("detection", "[[1, 2, 3, 4], [1, 2]]"), r"record 0: field 'solution': a detection answer must be a list"),
        (box_record("detection", "[[1, 2, 3, 4], [9, 2, 3, 4]]"), r"record 0: field 'solution': box \[9, 2, 3, 4\] is not"),
        (box_record("box", "[1, 2, 3, 4]", data_type="video", path="./img/a.mp4"),
         r"record 0: field 'data_type': a box record needs one image"),
    ],
)
def test_video_r1_box_refusals(tmp_path: Path, record: dict, message: str) -> None:
    write_image(tmp_path / "img" / "a.png")
    (tmp_path / "img" / "a.mp4").write_bytes(b"x")
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps([record]))
    with pytest.raises(RecordError, match=re.escape(str(path)) + " " + message):
        load_benchmark_samples(path)


# --- synthetic rec and detection images ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def perception_data(tmp_path_factory: pytest.TempPathFactory):
    return make_dataset(tmp_path_factory.mktemp("perception"), n_train=12, n_test=4, seed=3, tasks=PERCEPTION_TASKS)


def _records(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_synthetic_boxes_are_the_drawn_pixels(perception_data) -> None:
    for path in (perception_data.train_path, perception_data.test_path):
        for record in _records(path):
            pixels = np.asarray(Image.open(perception_data.root / record["path"]).convert("RGB"))
            assert pixels.shape == (112, 112, 3)
            covered = np.zeros(pixels.shape[:2], dtype=bool)
            for obj in record["objects"]:
                x1, y1, x2, y2 = obj["box"]
                assert x2 - x1 == y2 - y1 == SIDES[obj["size"]]
                inside = np.all(pixels[y1:y2, x1:x2] == COLORS[obj["color"]], axis=-1)
                rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
                assert (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1) == (0, 0, x2 - x1, y2 - y1), obj
                covered[y1:y2, x1:x2] = True
            assert np.all(pixels[~covered] == BACKGROUND), "a shape has pixels outside its box"


def test_synthetic_answers_are_the_boxes_the_question_names(perception_data) -> None:
    records = _records(perception_data.train_path)
    assert [r["task"] for r in records] == ["rec", "detection"] * 6
    for record in records:
        answer = re.fullmatch(r"<answer>(.*)</answer>", record["solution"]).group(1)
        assert record["data_type"] == "image" and record["path"].startswith("./images/")
        if record["task"] == "rec":
            size, color, shape = re.fullmatch(r"Where is the (\w+) (\w+) (\w+)\?", record["problem"]).groups()
            named = [o for o in record["objects"] if (o["size"], o["color"], o["shape"]) == (size, color, shape)]
            assert len(named) == 1 and parse_box(answer) == tuple(named[0]["box"])
            assert record["problem_type"] == "box"
            near = [o for o in record["objects"] if sum(
                a != b for a, b in zip((o["size"], o["color"], o["shape"]), (size, color, shape))
            ) == 1]
            assert near, "no distractor differs from the referent in one attribute"
        else:
            shape = re.fullmatch(r"Where is every (\w+)\?", record["problem"]).group(1)
            expected = sorted((o["box"] for o in record["objects"] if o["shape"] == shape), key=lambda b: (b[1], b[0]))
            assert 1 <= len(expected) < len(record["objects"]) and parse_boxes(answer) == [tuple(b) for b in expected]
            assert record["problem_type"] == "detection"


def test_reader_keeps_synthetic_answers_unconverted(perception_data) -> None:
    samples = load_benchmark_samples(perception_data.train_path)
    for sample, record in zip(samples, _records(perception_data.train_path)):
        assert sample.solution == record["solution"] and sample.extra["objects"] == record["objects"]
        assert sample.extra["image_size"] == sample.extra["resized_size"] == [112, 112]


def test_generation_is_deterministic_and_records_its_settings(perception_data, tmp_path: Path) -> None:
    again = make_dataset(tmp_path / "again", n_train=12, n_test=4, seed=3, tasks=PERCEPTION_TASKS)
    for name in ("train.json", "test.json", "dataset_info.json", "images/train_5.png", "images/test_3.png"):
        assert (perception_data.root / name).read_bytes() == (again.root / name).read_bytes(), name
    info = json.loads((again.root / "dataset_info.json").read_text(encoding="utf-8"))
    assert info["perception"] == {"size": 112, "min_objects": 3, "max_objects": 6, "sides": SIDES}
    assert again.image_dir == again.root / "images" and not any(again.video_dir.iterdir())


def test_cli_writes_perception_images_of_the_asked_size(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    main(["make-data", str(out), "--n-train", "2", "--n-test", "1", "--tasks", "count,rec", "--image-size", "224"])
    records = _records(out / "train.json")
    assert [(r["task"], r["data_type"]) for r in records] == [("count", "video"), ("rec", "image")]
    assert Image.open(out / records[1]["path"]).size == (224, 224)


def test_cli_sets_the_shapes_per_image_and_refuses_more_than_fit(tmp_path: Path, capsys) -> None:
    out = tmp_path / "small"
    main(["make-data", str(out), "--n-train", "6", "--n-test", "1", "--tasks", "rec", "--image-size", "56", "--image-objects", "2,4"])
    info = json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))
    assert (info["perception"]["size"], info["perception"]["min_objects"], info["perception"]["max_objects"]) == (56, 2, 4)
    assert all(2 <= len(r["objects"]) <= 4 for r in _records(out / "train.json"))
    with pytest.raises(SystemExit) as exit_info:
        main(["make-data", str(tmp_path / "too-many"), "--tasks", "rec", "--image-size", "56"])
    assert exit_info.value.code == 2
    assert "--image-size 56 --image-objects 3,6" in capsys.readouterr().err
    assert not (tmp_path / "too-many").exists()


def test_settings_refuse_sizes_the_model_would_resize() -> None:
    with pytest.raises(ValueError, match="multiple of 28"):
        PerceptionSettings(size=100)
    with pytest.raises(ValueError, match="multiple of 28"):
        PerceptionSettings(size=28)
    with pytest.raises(ValueError, match="exceeds the 4 cells"):
        PerceptionSettings(size=56)


def test_default_dataset_and_corpus_leave_perception_out(tmp_path: Path) -> None:
    assert TASKS == ("color", "direction", "count", "order", "colors_present")
    assert not any(line.startswith("Where is") or "small" in line for line in corpus_lines())
    plain = make_dataset(tmp_path / "plain", n_train=5, n_test=2, seed=2)
    other = make_dataset(tmp_path / "other", n_train=5, n_test=2, seed=2, perception=PerceptionSettings(size=224))
    for name in ("train.json", "test.json", "dataset_info.json", "videos/train_4.mp4"):
        assert (plain.root / name).read_bytes() == (other.root / name).read_bytes(), name
    assert plain.image_dir is None and not (plain.root / "images").exists()
    assert "perception" not in json.loads((plain.root / "dataset_info.json").read_text(encoding="utf-8"))


@pytest.fixture
def synthetic_video_records(tmp_path: Path) -> Path:
    from data_pipelines.synthetic.generator import make_dataset

    return make_dataset(tmp_path / "videos", n_train=1, n_test=0, tasks=["color"]).train_path
