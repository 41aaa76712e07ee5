"""The Video-R1 / TW-GRPO reader: record shapes, path resolution, overrides, limits and every error."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from data_pipelines.formats import load_dataset_files, load_samples
from data_pipelines.schema import RecordError
from data_pipelines.synthetic.mp4 import write_mp4

MC_RECORD = {
    "problem_id": 1,
    "problem": "What does the man do right after closing the laptop?",
    "data_type": "video",
    "problem_type": "multiple choice",
    "options": ["A. He stands up", "B. He drinks water", "C. He waves", "D. He reads a book"],
    "solution": "<answer>A</answer>",
    "path": "./clips/clip_0001.mp4",
    "data_source": "LLaVA-Video-178K/0_30_s_demo",
}
NUMERICAL_RECORD = {
    "problem_id": 6,
    "problem": "How many cubes are left on the table?",
    "data_type": "video",
    "problem_type": "numerical",
    "options": [],
    "process": "<think>Let me count ... 3 cubes remain.</think>",
    "solution": "<answer>3</answer>",
    "path": "./clips/video_0006.mp4",
    "data_source": "DemoCLEVRER",
}
TW_GRPO_RECORD = {
    "id": "4882821564_1",
    "video": "/NExTQA/videos/4882821564.mp4",
    "question": "why didn't the boy pick up one present from the group of them and move to the sofa",
    "options": ["(A) unwrap it", "(B) playing with toy train", "(C) gesture something"],
    "duration": 90,
    "glue": [[13.8, 29.8]],
    "type": "CW",
    "answer": "(B),(C)",
    "problem": "why didn't the boy pick up one present from the group of them and move to the sofa"
    "\nA unwrap it\nB playing with toy train\nC gesture something",
    "solution": "<answer>B,C</answer>",
    "is_negated": True,
}


def make_clip(path: Path) -> Path:
    frames = np.stack([np.full((16, 16, 3), 40 * t, dtype=np.uint8) for t in range(4)])
    return write_mp4(path, frames, 4.0)


def write_json(path: Path, records: Any) -> Path:
    path.write_text(json.dumps(records, indent=2), encoding="utf-8")
    return path


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def one_line(error: pytest.ExceptionInfo[RecordError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    make_clip(tmp_path / "clips" / "clip_0001.mp4")
    make_clip(tmp_path / "clips" / "video_0006.mp4")
    return tmp_path


# --- record shapes ------------------------------------------------------------------------------


def test_video_r1_json_list(data_dir: Path) -> None:
    path = write_json(data_dir / "train.json", [MC_RECORD, NUMERICAL_RECORD])
    mc, numerical = load_samples(path)
    assert mc.sample_id == "1" and mc.problem == MC_RECORD["problem"]
    assert mc.problem_type == "multiple choice" and mc.data_type == "video"
    assert mc.options == tuple(MC_RECORD["options"]) and mc.option_letters == ("A", "B", "C", "D")
    assert mc.solution == "<answer>A</answer>" and mc.answer == "A" and mc.process is None
    assert mc.media_path == (data_dir / "clips" / "clip_0001.mp4").absolute() and mc.media_path.is_absolute()
    assert mc.origin == f"{path}#0" and numerical.origin == f"{path}#1"
    assert mc.extra == {"problem_id": 1, "data_source": "LLaVA-Video-178K/0_30_s_demo"}
    assert mc.media_overrides == {}
    assert numerical.problem_type == "numerical" and numerical.options == () and numerical.answer == "3"
    assert numerical.process == "<think>Let me count ... 3 cubes remain.</think>"


def test_jsonl_counts_lines_from_one_and_skips_blank_lines(data_dir: Path) -> None:
    path = write_jsonl(data_dir / "train.jsonl", [MC_RECORD, "", "   ", NUMERICAL_RECORD])
    samples = load_samples(path)
    assert [s.origin for s in samples] == [f"{path}#1", f"{path}#4"]
    assert samples[1].answer == "3"


def test_json_file_holding_json_lines_is_read_line_by_line(data_dir: Path) -> None:
    path = write_jsonl(data_dir / "train.json", [MC_RECORD, NUMERICAL_RECORD])
    assert [s.origin for s in load_samples(path)] == [f"{path}#1", f"{path}#2"]


def test_media_root_and_path_forms(tmp_path: Path) -> None:
    media = tmp_path / "media"
    clip = make_clip(media / "clips" / "clip_0001.mp4")
    records = [
        MC_RECORD,
        {**MC_RECORD, "path": "clips/clip_0001.mp4"},
        {**MC_RECORD, "path": "/clips/clip_0001.mp4"},
        {**MC_RECORD, "path": str(clip)},
    ]
    (tmp_path / "data").mkdir()
    path = write_json(tmp_path / "data" / "train.json", records)
    samples = load_samples(path, media_root=media)
    assert {s.media_path for s in samples} == {clip.absolute()}
    with pytest.raises(RecordError, match=re.escape(f"{path} record 0: field 'path': media file")):
        load_samples(path)


def test_tw_grpo_record_shape(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "nextqa" / "NExTQA" / "videos" / "4882821564.mp4")
    single = {**TW_GRPO_RECORD, "answer": "(C)", "solution": "<answer>C</answer>"}
    minimal = {"problem": "what does he do\nA took\nB put down", "solution": "<answer>B</answer>", "video": str(clip)}
    path = write_json(tmp_path / "nextgqa_val_mixed.json", [TW_GRPO_RECORD, single, minimal])
    multi, one, bare = load_samples(path, media_root=tmp_path / "nextqa")
    assert multi.problem_type == "multi-answer" and multi.answer == "B,C" and multi.data_type == "video"
    assert multi.options == tuple(TW_GRPO_RECORD["options"]) and multi.option_letters == ("A", "B", "C")
    assert multi.media_path == clip.absolute() and multi.sample_id == "4882821564_1"
    assert multi.extra["answer"] == "(B),(C)" and multi.extra["is_negated"] is True
    assert multi.extra["options_in_problem"] is True and multi.problem == TW_GRPO_RECORD["problem"]
    assert one.problem_type == "multiple choice" and one.answer == "C"
    assert bare.problem_type == "multiple choice" and bare.options == () and bare.media_path == clip
    assert bare.sample_id == f"{path}#2" and "options_in_problem" not in bare.extra


def test_data_type_inference_and_text_records(tmp_path: Path) -> None:
    (tmp_path / "img.png").write_bytes(b"\x89PNG not decoded here")
    make_clip(tmp_path / "v.mp4")
    records = [
        {"problem": "What?", "problem_type": "free-form", "solution": "<answer>a cat</answer>", "path": "./img.png"},
        {"problem": "How many?", "problem_type": "numerical", "solution": "<answer>2</answer>", "path": "./v.mp4"},
        {"problem": "What is 2+2?", "problem_type": "numerical", "data_type": "text", "solution": "<answer>4</answer>"},
    ]
    image, video, text = load_samples(write_json(tmp_path / "mixed.json", records))
    assert (image.data_type, video.data_type, text.data_type) == ("image", "video", "text")
    assert text.media_path is None


def test_frame_rows_read_as_video_or_frame_list(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from PIL import Image

    from vlm_rl.records import load_records

    clip = np.random.default_rng(0).integers(0, 255, (4, 56, 56, 3), dtype=np.uint8)  # decord fails on make_clip's 16x16 clips
    tvqa = tmp_path / "video" / "tvqa" / "frames_fps3_hq"
    for name in ("s01e01_seg1.mp4", "s01e01_seg2.mp4"):
        write_mp4(tvqa / name, clip, 4.0)
    frames = tmp_path / "video" / "star" / "clip_7"
    frames.mkdir(parents=True)
    for number in (10, 2, 1):
        Image.fromarray(np.full((16, 16, 3), number, dtype=np.uint8)).save(frames / f"{number:d}.png")
    (frames / "notes.txt").write_text("not a frame")
    write_mp4(tmp_path / "video" / "clevrer" / "v.mp4", clip, 4.0)
    row = {**MC_RECORD, "data_type": "frame", "data_source": "MVBench"}
    records = [
        {**row, "path": "./video/tvqa/frames_fps3_hq/s01e01_seg1.mp4"},
        {**row, "path": "./video/star/clip_7"},
        {**row, "path": "./video/tvqa/frames_fps3_hq/s01e01_seg2.mp4"},
        {**MC_RECORD, "path": "./video/clevrer/v.mp4"},
    ]
    path = write_json(tmp_path / "eval_mvbench.json", records)
    with caplog.at_level("WARNING", logger="data_pipelines.formats.video_r1"):
        first, frame_list, second, plain = load_samples(path)
    assert (first.data_type, second.data_type, plain.data_type) == ("video", "video", "video")
    assert first.media_path == (tvqa / "s01e01_seg1.mp4").absolute() and first.extra_images == ()
    assert frame_list.data_type == "image"
    assert [frame_list.media_path, *frame_list.extra_images] == [(frames / f"{n}.png").absolute() for n in (1, 2, 10)]
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: 2 data_type 'frame' rows read as video (their path is a video file), 1 as frame lists "
        "(their path is a directory of images)"
    ]
    assert len(load_records([str(path)], None)) == 4, "every frame of the list and both clips decode"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("./empty", "frame directory {root}/empty holds no images"),
        ("./note.txt", "a data_type 'frame' row needs a video file or a directory of frames, got {root}/note.txt"),
        ("./gone.mp4", "media file {root}/gone.mp4 not found"),
    ],
)
def test_unusable_frame_rows(tmp_path: Path, path: str, message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "note.txt").write_text("x")
    data = write_json(tmp_path / "mv.json", [{**MC_RECORD, "data_type": "frame", "path": path}])
    with pytest.raises(RecordError, match=re.escape(f"{data} record 0: field 'path': " + message.format(root=tmp_path))):
        load_samples(data)


def test_media_overrides(data_dir: Path) -> None:
    record = {**MC_RECORD, "fps": 2.0, "max_pixels": 3136, "nframes": 8, "note": "kept"}
    (sample,) = load_samples(write_json(data_dir / "train.json", [record]))
    assert sample.media_overrides == {"fps": 2.0, "max_pixels": 3136, "nframes": 8}
    assert "fps" not in sample.extra and sample.extra["note"] == "kept"


def test_limit_stops_early(data_dir: Path) -> None:
    path = write_jsonl(data_dir / "train.jsonl", [MC_RECORD, NUMERICAL_RECORD, "{broken"])
    assert [s.answer for s in load_samples(path, limit=2)] == ["A", "3"]
    assert len(load_samples(write_json(data_dir / "train.json", [MC_RECORD] * 5), limit=3)) == 3
    with pytest.raises(ValueError, match="limit"):
        load_samples(path, limit=0)


def test_load_dataset_files_concatenates(data_dir: Path) -> None:
    first = write_json(data_dir / "a.json", [MC_RECORD, MC_RECORD])
    second = write_jsonl(data_dir / "b.jsonl", [NUMERICAL_RECORD])
    samples = load_dataset_files([first, second])
    assert [s.origin for s in samples] == [f"{first}#0", f"{first}#1", f"{second}#1"]
    assert len(load_dataset_files([first, second], limit=1)) == 1
    assert len(load_dataset_files([first, second], limit=3)) == 3
    with pytest.raises(ValueError, match="at least one"):
        load_dataset_files([])


# --- errors -------------------------------------------------------------------------------------


def without(record: dict, key: str) -> dict:
    return {k: v for k, v in record.items() if k != key}


INLINE_ONLY = {"problem": "q\nA took\nB put down", "solution": "<answer>C</answer>", "video": "./clips/clip_0001.mp4"}
BAD_RECORDS = {
    "no problem": ([without(MC_RECORD, "problem")], "record 0", "field 'problem' is missing; every record needs"),
    "empty problem": ([{**MC_RECORD, "problem": ""}], "record 0", "field 'problem' must be a non-empty string"),
    "no solution": (
        [MC_RECORD, without(MC_RECORD, "solution")],
        "record 1",
        "field 'solution' is missing; every record needs \"<answer>…</answer>\"",
    ),
    "no answer tags": ([{**MC_RECORD, "solution": "A"}], "record 0", "field 'solution' has no <answer>…</answer>"),
    "letter not an option": (
        [{**MC_RECORD, "solution": "<answer>E</answer>"}],
        "record 0",
        "field 'solution': answer letter 'E' is not among the option letters A, B, C, D",
    ),
    "answer not a letter": (
        [{**MC_RECORD, "solution": "<answer>He stands up</answer>"}],
        "record 0",
        "field 'solution': a multiple choice answer must be one option letter",
    ),
    "multi-answer letter not an option": (
        [{**TW_GRPO_RECORD, "solution": "<answer>B,D</answer>"}],
        "record 0",
        "field 'solution': answer letter 'D' is not among the option letters A, B, C",
    ),
    "letter not an inline option": (
        [INLINE_ONLY],
        "record 0",
        "field 'solution': answer letter 'C' is not among the option letters A, B",
    ),
    "unknown problem_type": (
        [{**MC_RECORD, "problem_type": "essay"}],
        "record 0",
        "field 'problem_type' is 'essay', not a known type; use one of 'multiple choice', 'numerical'",
    ),
    "problem_type not inferable": (
        [without(NUMERICAL_RECORD, "problem_type")],
        "record 0",
        "field 'problem_type' is missing and cannot be inferred from answer '3'",
    ),
    "unlabelled option": (
        [{**MC_RECORD, "options": ["He stands up", "He waves"]}],
        "record 0",
        "field 'options' item 0 ('He stands up') has no letter label",
    ),
    "options not a list": ([{**MC_RECORD, "options": "A. yes"}], "record 0", "field 'options' must be a list of"),
    "repeated option letter": (
        [{**MC_RECORD, "options": ["A. yes", "A. no"]}],
        "record 0",
        "field 'options' repeats a letter label (A, A)",
    ),
    "unknown data_type": (
        [{**MC_RECORD, "data_type": "audio"}],
        "record 0",
        "field 'data_type' is 'audio'; use one of video, image, text",
    ),
    "no media key": (
        [without(MC_RECORD, "path")],
        "record 0",
        "field 'path' is missing; a video record needs \"path\" (Video-R1) or \"video\" (TW-GRPO)",
    ),
    "bad override": ([{**MC_RECORD, "fps": "fast"}], "record 0", "field 'fps' must be a positive number"),
    "not an object": ([MC_RECORD, ["not", "an", "object"]], "record 1", "expected a JSON object"),
}


@pytest.mark.parametrize(("records", "where", "message"), list(BAD_RECORDS.values()), ids=list(BAD_RECORDS))
def test_bad_records_name_file_record_and_field(data_dir: Path, records: list, where: str, message: str) -> None:
    path = write_json(data_dir / "train.json", records)
    with pytest.raises(RecordError, match=re.escape(f"{path} {where}: {message}")) as error:
        load_samples(path)
    one_line(error)


def test_missing_media_names_resolved_path_and_media_root(data_dir: Path) -> None:
    path = write_jsonl(data_dir / "train.jsonl", [MC_RECORD, {**MC_RECORD, "path": "./clips/gone.mp4"}])
    with pytest.raises(RecordError) as error:
        load_samples(path)
    message = one_line(error)
    resolved = (data_dir / "clips" / "gone.mp4").absolute()
    assert message.startswith(f"{path} line 2: field 'path': media file {resolved} not found")
    assert "media_root=" in message


def test_missing_tw_grpo_video_mentions_both_tries(tmp_path: Path) -> None:
    path = write_json(tmp_path / "mixed.json", [TW_GRPO_RECORD])
    with pytest.raises(RecordError, match=re.escape(f"{path} record 0: field 'video': media file")) as error:
        load_samples(path, media_root=tmp_path / "nowhere")
    message = one_line(error)
    assert str((tmp_path / "nowhere" / "NExTQA" / "videos" / "4882821564.mp4").absolute()) in message
    assert "nor at /NExTQA/videos/4882821564.mp4 itself" in message and "media_root=" in message


def test_zero_length_media_file(data_dir: Path) -> None:
    (data_dir / "clips" / "empty.mp4").write_bytes(b"")
    path = write_json(data_dir / "train.json", [{**MC_RECORD, "path": "./clips/empty.mp4"}])
    with pytest.raises(RecordError, match=re.escape(f"{path} record 0: field 'path': media file ")) as error:
        load_samples(path)
    assert one_line(error).endswith("empty.mp4 is empty (0 bytes); re-download or regenerate it")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.json", '[\n  {"problem": "q"},\n  {"problem": }\n]', "bad.json line 3: invalid JSON"),
        ("bad.jsonl", json.dumps(MC_RECORD) + "\n{'problem': 'q'}\n", "bad.jsonl line 2: invalid JSON"),
        ("obj.json", json.dumps({"data": [MC_RECORD]}), "obj.json: top level is a JSON object, expected a list"),
        ("empty.json", "[]", "empty.json: the dataset has no records"),
        ("blank.jsonl", "\n\n", "blank.jsonl: the dataset has no records"),
        ("zero.json", "", "zero.json: the dataset has no records"),
    ],
)
def test_bad_files(data_dir: Path, name: str, text: str, message: str) -> None:
    path = data_dir / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RecordError, match=re.escape(str(data_dir / message))) as error:
        load_samples(path)
    one_line(error)


def test_missing_dataset_file(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match=re.escape(f"{tmp_path / 'nope.json'}: dataset file not found")):
        load_samples(tmp_path / "nope.json")
