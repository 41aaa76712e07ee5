"""The needle task: the event hides from the uniform preview, answers and traces match the decoded pixels."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from data_pipelines.formats import load_benchmark_samples
from data_pipelines.prompts import TYPE_TEMPLATES
from data_pipelines.schema import option_letter
from data_pipelines.synthetic.generator import SyntheticDataset, make_dataset
from data_pipelines.synthetic.needle import (
    NEEDLE_KINDS,
    NeedleSettings,
    blocked_frames,
    make_needle_clip,
    preview_indices,
)
from data_pipelines.synthetic.scenes import Difficulty, shape_mask
from data_pipelines.synthetic.vocabulary import (
    COLORS,
    NEEDLE_QUESTIONS,
    NEEDLE_TASK,
    TASKS,
    corpus_lines,
)
from vlm_rl.cli import main
from vlm_rl.media.sampling import VideoSampling, frame_indices
from vlm_rl.media.video import read_video
from vlm_rl.rewards.accuracy import scorer_for
from vlm_rl.rollout.frame_search.tool import TOOL_NAME, cast_arguments
from vlm_rl.rollout.turns import parse_tool_call

SETTINGS = NeedleSettings(frames=64)
TOLERANCE = 40
"""Largest per-channel distance of a decoded pixel from a palette colour for it to count as that colour."""
MIN_PIXELS = 60
"""Fewest pixels of a colour for it to count as drawn (the smallest shape fills ~100 of 14x14)."""
TRACE_CALL = re.compile(r"<think>[^<]+</think><tool_call>\n(.+)\n</tool_call>", re.DOTALL)
TRACE_ANSWER = re.compile(r"<think>[^<]+</think><answer>(.+)</answer>", re.DOTALL)


# --- helpers ------------------------------------------------------------------------------------


def color_pixels(frames: np.ndarray, color: str, *, per_pixel: bool = False) -> np.ndarray:
    """Per frame of uint8 ``[T, H, W, 3]``, how many pixels lie within TOLERANCE of palette `color` (or which)."""
    close = np.abs(frames.astype(int) - np.array(COLORS[color])).max(axis=-1) <= TOLERANCE
    return close if per_pixel else close.sum(axis=(1, 2))


def decode(path: Path, nframes: int) -> tuple[tuple[int, ...], np.ndarray]:
    """The indices and uint8 ``[T, H, W, 3]`` frames the repo's reader takes with ``nframes``, at 56x56."""
    sampling = VideoSampling(fps=None, nframes=nframes, min_pixels=56 * 56, max_pixels=56 * 56)
    clip = read_video(path, sampling)
    return clip.indices, clip.frames.permute(0, 2, 3, 1).numpy()


def records(data: SyntheticDataset) -> list[dict]:
    return [r for p in (data.train_path, data.test_path) for r in json.loads(p.read_text(encoding="utf-8"))]


def seen_event(frames: np.ndarray) -> tuple[str, str, int, int]:
    """``(colour, shape, first, end)`` of the one colour drawn on some frames only, read from the pixels."""
    counts = {color: color_pixels(frames, color) for color in COLORS}
    brief = [c for c, n in counts.items() if (n >= MIN_PIXELS).any() and not (n >= MIN_PIXELS).all()]
    assert len(brief) == 1, f"expected one briefly shown colour, got {brief}"
    color = brief[0]
    shown = np.flatnonzero(counts[color] >= MIN_PIXELS)
    assert (np.diff(shown) == 1).all(), f"the event frames {shown.tolist()} are not consecutive"
    assert counts[color][counts[color] < MIN_PIXELS].max(initial=0) == 0, "event colour leaks onto other frames"
    return color, shape_of(frames[shown[0]], color), int(shown[0]), int(shown[-1]) + 1


def shape_of(frame: np.ndarray, color: str) -> str:
    """The shape drawn in `color` on one decoded frame, told by how much of its bounding box it fills.

    Drawn masks fill 1.0 (square), 0.78 (circle) and 0.52 (triangle) of their box; the encoder's chroma
    blur trims edge pixels, which raises circles to ~0.89 and triangles to ~0.6, so the cuts sit between.
    """
    ys, xs = np.nonzero(color_pixels(frame[None], color, per_pixel=True)[0])
    fill = len(ys) / ((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1))
    return "square" if fill > 0.95 else "circle" if fill > 0.72 else "triangle"


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def needle_data(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    out = tmp_path_factory.mktemp("needle") / "data"
    return make_dataset(out, n_train=9, n_test=3, seed=11, tasks=(NEEDLE_TASK,), needle=SETTINGS)


# --- the preview guarantee ----------------------------------------------------------------------


def test_preview_indices_are_what_the_video_reader_samples() -> None:
    for total in range(64, 257, 7):
        for n in range(2, 33, 2):
            assert preview_indices(total, n) == frame_indices(n, total), (total, n)
            assert set(preview_indices(total, n)) <= blocked_frames(total, n)
    with pytest.raises(ValueError, match="preview_frames"):
        preview_indices(64, 65)


@pytest.mark.parametrize("settings", [SETTINGS, NeedleSettings(), NeedleSettings(frames=256, preview_frames=32)])
def test_event_never_touches_a_preview_frame(settings: NeedleSettings) -> None:
    preview = preview_indices(settings.frames, settings.preview_frames)
    starts = set()
    for seed in range(60):
        clip = make_needle_clip(np.random.default_rng(seed), NEEDLE_KINDS[seed % 3], settings)
        event = clip.event
        assert 2 <= event.end_frame - event.start_frame <= 4
        assert not set(preview) & set(range(event.start_frame, event.end_frame))
        frames = clip.instance.frames
        assert frames.shape == (settings.frames, 56, 56, 3)
        drawn = np.flatnonzero(color_pixels(frames, event.color))
        assert drawn.tolist() == list(range(event.start_frame, event.end_frame))
        x, y = event.corner
        expected = np.zeros((56, 56), dtype=bool)
        expected[y : y + 14, x : x + 14] = shape_mask(event.shape, 14)
        assert ((frames[event.start_frame] == COLORS[event.color]).all(-1) == expected).all()
        assert event.color not in {o.color for o in clip.instance.objects}
        assert event.shape not in {o.shape for o in clip.instance.objects}
        assert len(clip.instance.objects) == settings.distractors
        starts.add(event.start_frame)
    assert len(starts) > 20, "event times should spread over the clip"


def test_decoded_preview_misses_the_event_and_full_decode_shows_it(needle_data: SyntheticDataset) -> None:
    preview = preview_indices(SETTINGS.frames, SETTINGS.preview_frames)
    for record in records(needle_data):
        video = needle_data.root / record["path"]
        event = record["event"]
        indices, sampled = decode(video, SETTINGS.preview_frames)
        assert list(indices) == preview
        assert color_pixels(sampled, event["colour"]).max() == 0, f"{video}: the preview shows the event"
        indices, every = decode(video, SETTINGS.frames)
        assert list(indices) == list(range(SETTINGS.frames))
        color, shape, first, end = seen_event(every)
        assert (color, shape, first, end) == (event["colour"], event["shape"], event["start_frame"], event["end_frame"])


# --- records, answers, traces -------------------------------------------------------------------


def test_answers_follow_from_the_decoded_event(needle_data: SyntheticDataset) -> None:
    fps = SETTINGS.fps
    kinds = []
    for record in records(needle_data):
        _, every = decode(needle_data.root / record["path"], SETTINGS.frames)
        color, shape, first, end = seen_event(every)
        answer = re.fullmatch(r"<answer>(.*)</answer>", record["solution"]).group(1)
        kind = record["needle_kind"]
        kinds.append(kind)
        assert record["task"] == NEEDLE_TASK and record["data_source"] == "synthetic/needle"
        assert record["duration"] == SETTINGS.frames / fps
        assert record["event"]["start_time"] == first / fps and record["event"]["end_time"] == end / fps
        if kind == "color":
            assert record["problem_type"] == "multiple choice"
            assert record["problem"] == NEEDLE_QUESTIONS["color"].format(shape=shape)
            texts = {option_letter(o): o.split(". ", 1)[1] for o in record["options"]}
            assert len(set(texts.values())) == 4 and texts[answer] == color
        elif kind == "second":
            assert record["problem_type"] == "numerical" and record["options"] == []
            assert answer == str(math.floor(first / fps))
            assert f"{color} {shape}" in record["problem"]
        else:
            assert record["problem_type"] == "grounding"
            assert json.loads(answer) == {"start_time": first / fps, "end_time": end / fps}
            assert f"{color} {shape}" in record["problem"]
        assert scorer_for(record["problem_type"])(answer, answer) == 1.0
    train_kinds = kinds[:9]
    assert train_kinds == [NEEDLE_KINDS[i % 3] for i in range(9)]


def test_search_traces_find_the_event_and_end_in_the_answer(needle_data: SyntheticDataset) -> None:
    for record in records(needle_data):
        search, final = record["search_trace"]
        body = TRACE_CALL.fullmatch(search).group(1)
        call = json.loads(body)
        assert call["name"] == "seek_video_frames"
        arguments = call["arguments"]
        assert arguments["num_frames"] == 8
        event = record["event"]
        start, end = arguments["start_time"], arguments["end_time"]
        assert (start, end) == (0, record["duration"]), "the trace searches the whole clip"
        expected_query = event["shape"] if record["needle_kind"] == "color" else f"{event['colour']} {event['shape']}"
        assert arguments["query"] == expected_query
        parsed = parse_tool_call(body)
        assert parsed.name == TOOL_NAME
        cast = cast_arguments(parsed.arguments)
        assert (cast.start_time, cast.end_time, cast.num_frames) == (start, end, 8)
        assert f"<answer>{TRACE_ANSWER.fullmatch(final).group(1)}</answer>" == record["solution"]
        assert final.startswith(record["process"])


def test_reader_keeps_the_needle_fields(needle_data: SyntheticDataset) -> None:
    samples = load_benchmark_samples(needle_data.train_path)
    raw = json.loads(needle_data.train_path.read_text(encoding="utf-8"))
    assert len(samples) == len(raw) == 9
    for sample, record in zip(samples, raw):
        assert sample.extra["duration"] == record["duration"] == 8.0
        assert sample.extra["search_trace"] == record["search_trace"]
        assert sample.extra["event"] == record["event"] and sample.extra["needle_kind"] == record["needle_kind"]
        assert sample.media_path == (needle_data.root / record["path"]).absolute()
        assert not sample.media_overrides
        assert sample.problem_type in TYPE_TEMPLATES


def test_generation_is_deterministic_and_mixes_with_other_tasks(tmp_path: Path) -> None:
    first = make_dataset(tmp_path / "a", n_train=8, n_test=2, seed=4, tasks=("count", NEEDLE_TASK), needle=SETTINGS)
    again = make_dataset(tmp_path / "b", n_train=8, n_test=2, seed=4, tasks=("count", NEEDLE_TASK), needle=SETTINGS)
    for name in ("train.json", "test.json", "dataset_info.json", "videos/train_1.mp4", "videos/test_1.mp4"):
        assert (first.root / name).read_bytes() == (again.root / name).read_bytes(), name
    assert first.counts == {"train": {"count": 4, NEEDLE_TASK: 4}, "test": {"count": 1, NEEDLE_TASK: 1}}
    train = json.loads(first.train_path.read_text(encoding="utf-8"))
    assert [r["needle_kind"] for r in train if r["task"] == NEEDLE_TASK] == ["color", "second", "grounding", "color"]
    assert all("search_trace" not in r and "event" not in r for r in train if r["task"] == "count")
    _, count_frames = decode(first.root / train[0]["path"], 4)
    assert count_frames.shape[0] == 4


# --- command line and the default dataset -------------------------------------------------------


def test_cli_writes_needle_clips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    main(["make-data", str(out), "--n-train", "3", "--n-test", "1", "--tasks", NEEDLE_TASK,
          "--needle-frames", "80", "--needle-preview-frames", "6", "--needle-distractors", "2"])
    assert str(out / "train.json") in capsys.readouterr().out
    info = json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))
    assert info["tasks"] == [NEEDLE_TASK]
    assert info["needle"]["preview_frames"] == 6 and info["needle"]["frames"] == 80
    assert info["needle"]["preview_indices"] == preview_indices(80, 6)
    for record in json.loads((out / "train.json").read_text(encoding="utf-8")):
        indices, sampled = decode(out / record["path"], 6)
        assert list(indices) == info["needle"]["preview_indices"]
        assert color_pixels(sampled, record["event"]["colour"]).max() == 0
        assert record["duration"] == 10.0
        _, every = decode(out / record["path"], 80)
        assert len({c for c in COLORS if color_pixels(every[:1], c)[0] >= MIN_PIXELS}) <= 2


def test_default_dataset_leaves_needle_out(tmp_path: Path) -> None:
    assert TASKS == ("color", "direction", "count", "order", "colors_present")
    assert not any("briefly" in line or "first appear" in line for line in corpus_lines())
    plain = make_dataset(tmp_path / "plain", n_train=5, n_test=2, seed=2)
    other = make_dataset(tmp_path / "other", n_train=5, n_test=2, seed=2, needle=NeedleSettings(frames=200))
    for name in ("train.json", "test.json", "dataset_info.json", "videos/train_4.mp4"):
        assert (plain.root / name).read_bytes() == (other.root / name).read_bytes(), name
    info = json.loads((plain.root / "dataset_info.json").read_text(encoding="utf-8"))
    assert info["tasks"] == list(TASKS) and "needle" not in info
    assert all(set(r) == set(records(plain)[0]) and "event" not in r for r in records(plain))


def test_settings_refuse_what_cannot_hide_the_event() -> None:
    with pytest.raises(ValueError, match="frames must lie in"):
        NeedleSettings(frames=32)
    with pytest.raises(ValueError, match="even"):
        NeedleSettings(preview_frames=7)
    with pytest.raises(ValueError, match="no 4 consecutive unsampled frames"):
        NeedleSettings(frames=64, preview_frames=16)
    with pytest.raises(ValueError, match="distractors"):
        make_needle_clip(np.random.default_rng(0), "color", NeedleSettings(distractors=9), Difficulty())
    with pytest.raises(ValueError, match="question kind"):
        make_needle_clip(np.random.default_rng(0), "size", SETTINGS)
