"""Boxes: the shared resize rule, conversion between original and resized pixels, IoU, and reading model text."""

from __future__ import annotations

import random
import string

import pytest
from qwen_vl_utils import vision_process as qvp

from data_pipelines.boxes import (
    box_iou,
    box_problem,
    format_box,
    format_boxes,
    parse_box,
    parse_boxes,
    scale_box,
    to_original,
    to_resized,
)
from data_pipelines.image_size import IMAGE_MAX_PIXELS, IMAGE_MIN_PIXELS, resized_image_size, smart_resize
from vlm_rl.config import ImageConfig
from vlm_rl.media import sampling

ODD_SIZES = [(333, 517), (1001, 97), (29, 31), (640, 427), (4001, 2999), (57, 1013)]


# --- the resize rule ----------------------------------------------------------------------------------------


def test_media_sampling_reexports_the_one_resize_rule() -> None:
    assert sampling.smart_resize is smart_resize
    assert (IMAGE_MIN_PIXELS, IMAGE_MAX_PIXELS) == (ImageConfig().min_pixels, ImageConfig().max_pixels)


@pytest.mark.parametrize(("width", "height"), ODD_SIZES)
def test_resized_size_is_width_first_and_matches_qwen(width: int, height: int) -> None:
    expected_height, expected_width = qvp.smart_resize(height, width, 28, IMAGE_MIN_PIXELS, IMAGE_MAX_PIXELS)
    assert resized_image_size(width, height) == (expected_width, expected_height)
    assert resized_image_size(width, height, max_pixels=64 * 28 * 28) == tuple(
        reversed(qvp.smart_resize(height, width, 28, IMAGE_MIN_PIXELS, 64 * 28 * 28))
    )


# --- conversion ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), ODD_SIZES)
def test_original_to_resized_and_back_is_exact(width: int, height: int) -> None:
    resized = resized_image_size(width, height)
    rng = random.Random(width * 7919 + height)
    boxes = [(0.0, 0.0, float(width), float(height))]
    for _ in range(300):
        x1, x2 = sorted(rng.sample(range(width + 1), 2))
        y1, y2 = sorted(rng.sample(range(height + 1), 2))
        boxes.append((float(x1), float(y1), float(x2), float(y2)))
        boxes.append(tuple(round(v + rng.random(), 2) for v in (x1, y1, x2 - 1, y2 - 1)))
    for box in boxes:
        assert to_original(to_resized(box, (width, height), resized), resized, (width, height)) == box


def test_conversion_scales_each_axis_by_its_own_ratio() -> None:
    original, resized = (1001, 97), resized_image_size(1001, 97)
    assert resized != original and resized[0] / original[0] != resized[1] / original[1]
    assert to_resized((0, 0, 1001, 97), original, resized) == (0.0, 0.0, *map(float, resized))
    x1, y1, x2, y2 = to_resized((100, 10, 200, 20), original, resized)
    assert (x1, x2) == pytest.approx((100 * resized[0] / 1001, 200 * resized[0] / 1001), rel=1e-15)
    assert (y1, y2) == pytest.approx((10 * resized[1] / 97, 20 * resized[1] / 97), rel=1e-15)


def test_a_prediction_in_resized_pixels_maps_back_to_the_same_region() -> None:
    original = (640, 427)
    resized = resized_image_size(*original)
    prediction = (17.0, 33.0, 401.0, 222.0)
    back = to_resized(to_original(prediction, resized, original), original, resized)
    assert back == pytest.approx(prediction, abs=1e-5)
    assert box_iou(back, prediction) == pytest.approx(1.0)


def test_scale_box_refuses_empty_sizes() -> None:
    with pytest.raises(ValueError, match="positive"):
        scale_box((0, 0, 1, 1), (0, 10), (28, 28))


# --- IoU ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),
        ((0, 0, 10, 10), (2, 2, 7, 7), 25 / 100),
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),
        ((0, 0, 10, 10), (10, 10, 0, 0), 0.0),
        ((3, 3, 3, 9), (0, 0, 10, 10), 0.0),
        ((0.5, 0.5, 2.5, 2.5), (1.5, 1.5, 3.5, 3.5), 1 / 7),
    ],
)
def test_iou(a: tuple, b: tuple, expected: float) -> None:
    assert box_iou(a, b) == pytest.approx(expected)
    assert box_iou(b, a) == pytest.approx(expected)


def test_box_problem_names_what_is_wrong() -> None:
    assert box_problem((0, 0, 10, 20), (10, 20)) is None
    assert "outside the 10x20 image" in box_problem((0, 0, 11, 20), (10, 20))
    assert "outside" in box_problem((-1, 0, 5, 5), (10, 20))
    assert "x1 < x2" in box_problem((5, 0, 5, 5), (10, 20))
    assert "x1 < x2" in box_problem((6, 0, 5, 5), (10, 20))


# --- reading answers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "boxes"),
    [
        ("[12, 30, 50, 80]", [(12, 30, 50, 80)]),
        ("The box is [12.5, 30, 50, 80].", [(12.5, 30, 50, 80)]),
        ('{"bbox_2d": [1, 2, 3, 4], "label": "the man in red"}', [(1, 2, 3, 4)]),
        (
            '```json\n[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [5, 6, 7, 8], "label": "b"}]\n```',
            [(1, 2, 3, 4), (5, 6, 7, 8)],
        ),
        ("[[1, 2, 3, 4], [5, 6, 7, 8]]", [(1, 2, 3, 4), (5, 6, 7, 8)]),
        ("boxes: [1, 2, 3, 4] and [5, 6, 7, 8", [(1, 2, 3, 4)]),
        ("[]", []),
        (" [ ] ", []),
    ],
)
def test_parse_boxes_reads_the_usual_forms(text: str, boxes: list[tuple]) -> None:
    assert parse_boxes(text) == boxes
    assert parse_box(text) == (boxes[0] if boxes else None)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no box here",
        "[1, 2, 3]",
        "[1, 2, 3, 4, 5]",
        '{"label": "x"}',
        '{"bbox_2d": "1, 2, 3, 4"}',
        "[NaN, 0, 1, 1]",
        "[1e999, 0, 1, 1]",
        "[true, 1, 2, 3]",
        '["1", "2", "3", "4"]',
        "[" * 100_000,
        "[" * 5000 + "]" * 5000,
        "```json\n[{\"bbox_2d\": [1, 2",
        "\x00\xff\ud800",
    ],
)
def test_parse_returns_none_for_text_without_a_box(text: str) -> None:
    assert parse_boxes(text) is None
    assert parse_box(text) is None


def test_parse_never_raises_on_random_text() -> None:
    rng = random.Random(0)
    alphabet = string.printable + "[]{}\",:-.eE" * 8 + "ü∞"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        boxes = parse_boxes(text)
        assert boxes is None or all(len(box) == 4 for box in boxes)
        parse_box(text)


def test_format_writes_whole_numbers_bare_and_others_to_two_decimals() -> None:
    assert format_box((12.0, 30, 50.456, 80.004)) == "[12, 30, 50.46, 80]"
    assert format_boxes([]) == "[]"
    assert format_boxes([(1, 2, 3, 4), (5.5, 6, 7, 8)]) == "[[1, 2, 3, 4], [5.5, 6, 7, 8]]"
    assert parse_boxes(format_boxes([(1, 2, 3, 4), (5.5, 6, 7, 8)])) == [(1, 2, 3, 4), (5.5, 6, 7, 8)]
