"""The pending scene descriptions of a Syn-GRPO run, and what a description prompt keeps of a sample and an answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from data_pipelines.schema import Sample
from data_pipelines.synthesis.scene_prompt import MAX_DESCRIPTION_CHARS, SCENE_PROMPT, description_text, scene_objects
from vlm_rl.training.scene_descriptions import Description, DescriptionBook


def _description(key: str, step: int = 0) -> Description:
    return Description(
        key=key,
        source=f"train.json#{key}",
        step=step,
        seed=7,
        text=f"stripes {key}",
        completion_ids=[1, 2],
        old_logps=[-0.5, -1.0],
    )


def _book(*keys: str, step: int = 0) -> DescriptionBook:
    book = DescriptionBook()
    for key in keys:
        book.add(_description(key, step))
    return book


def _keys(descriptions: list[Description]) -> list[str]:
    return [d.key for d in descriptions]


def test_the_book_keeps_the_order_descriptions_were_written_in():
    book = _book("c", "a", "b")
    assert len(book) == 3
    assert _keys(book.undrawn()) == ["c", "a", "b"]


def test_a_pending_key_cannot_be_added_twice():
    book = _book("a")
    with pytest.raises(ValueError, match="description a is already pending"):
        book.add(_description("a", step=3))
    assert book.items["a"].step == 0


def test_ids_and_logps_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="description k: 3 tokens but 2 log-probs"):
        Description(key="k", source="s", step=0, seed=0, text="t", completion_ids=[1, 2, 3], old_logps=[-0.1, -0.2])


def test_arrive_records_the_image_once():
    book = _book("a", "b")
    arrived = book.arrive("a", "a.png", step=4)
    assert arrived is book.items["a"]
    assert (arrived.image, arrived.arrived_step) == ("a.png", 4)
    assert book.arrive("a", "other.png", step=9) is None
    assert (book.items["a"].image, book.items["a"].arrived_step) == ("a.png", 4)
    assert book.arrive("missing", "m.png", step=5) is None
    assert "missing" not in book.items
    assert book.items["b"].image is None


def test_ready_gives_arrived_undrawn_descriptions_oldest_first():
    book = _book("a", "b", "c", "d")
    for key in ("d", "b", "a"):
        book.arrive(key, f"{key}.png", step=1)
    assert _keys(book.ready(5)) == ["a", "b", "d"]
    assert _keys(book.ready(2)) == ["a", "b"]
    book.items["a"].drawn = True
    assert _keys(book.ready(2)) == ["b", "d"]
    assert book.ready(0) == []


def test_head_arrived_waits_for_the_oldest_undrawn_ones():
    book = _book("a", "b", "c")
    book.arrive("b", "b.png", step=1)
    assert not book.head_arrived(1)
    assert not book.head_arrived(2)
    book.arrive("a", "a.png", step=1)
    assert book.head_arrived(2)
    assert not book.head_arrived(3)
    book.items["a"].drawn = True
    assert not book.head_arrived(2)
    book.arrive("c", "c.png", step=2)
    assert book.head_arrived(2)
    assert book.head_arrived(10)


def test_pop_rewarded_removes_only_the_scored_ones():
    book = _book("a", "b", "c")
    book.items["c"].reward, book.items["c"].diversity = 0.1, 0.2
    book.items["a"].reward, book.items["a"].diversity = -0.05, 0.05
    book.items["b"].drawn = True
    assert _keys(book.pop_rewarded()) == ["a", "c"]
    assert list(book.items) == ["b"]
    assert book.pop_rewarded() == []


def test_expire_drops_undrawn_descriptions_older_than_the_limit():
    book = DescriptionBook()
    for key, step in (("old", 0), ("old_drawn", 0), ("edge", 2), ("new", 5)):
        book.add(_description(key, step))
    book.items["old_drawn"].drawn = True
    assert _keys(book.expire(step=10, expiry_steps=8)) == ["old"]
    assert list(book.items) == ["old_drawn", "edge", "new"]
    assert _keys(book.expire(step=11, expiry_steps=8)) == ["edge"]
    assert list(book.items) == ["old_drawn", "new"]


def test_the_state_round_trips():
    book = _book("a", "b", "c")
    book.arrive("b", "b.png", step=3)
    book.items["b"].drawn = True
    book.items["b"].diversity, book.items["b"].reward = 0.25, 0.1
    restored = DescriptionBook()
    restored.add(_description("stale"))
    restored.load_state_dict(book.state_dict())
    assert list(restored.items) == ["a", "b", "c"]
    assert list(restored.items.values()) == list(book.items.values())
    assert restored.items["b"] is not book.items["b"]


def test_description_text_prefers_the_answer_block_and_collapses_whitespace():
    assert description_text("<think>plan</think><answer>  red\n stripes\tand  dots </answer>") == "red stripes and dots"
    assert description_text("  a blue\n\n grid  ") == "a blue grid"


def test_description_text_is_cut_to_the_longest_a_job_carries():
    text = description_text("<answer>" + "ab " * MAX_DESCRIPTION_CHARS + "</answer>")
    assert len(text) == MAX_DESCRIPTION_CHARS
    assert text.startswith("ab ab")


def test_the_scene_prompt_asks_to_keep_the_objects():
    assert "Keep every object" in SCENE_PROMPT


def _sample(problem_type: str, extra: dict[str, Any], data_type: str = "image") -> Sample:
    question = "Where is the small red circle?"
    return Sample("s", question, problem_type, data_type, Path("x.png"), (), "", "", "x.json#0", extra=extra)


def test_scene_objects_keep_every_object_of_the_record():
    objects = [
        {"size": "small", "color": "red", "shape": "circle", "box": [1, 2, 10, 12]},
        {"size": "large", "color": "blue", "shape": "square", "box": [20, 20, 60, 64]},
    ]
    boxes, labels = scene_objects(_sample("box", {"objects": objects, "box_original": [1, 2, 10, 12]}))
    assert boxes == [[1.0, 2.0, 10.0, 12.0], [20.0, 20.0, 60.0, 64.0]]
    assert all(isinstance(v, float) for box in boxes for v in box)
    assert labels == ["small red circle", "large blue square"]


def test_a_box_sample_without_objects_keeps_its_answer_box_labelled_with_the_question():
    boxes, labels = scene_objects(_sample("box", {"box_original": [3, 4, 30, 40], "image_size": [64, 64]}))
    assert boxes == [[3.0, 4.0, 30.0, 40.0]]
    assert labels == ["Where is the small red circle?"]


def test_a_detection_sample_keeps_all_its_answer_boxes():
    boxes, labels = scene_objects(_sample("detection", {"boxes_original": [[0, 0, 5, 5], [8, 9, 20, 21]]}))
    assert boxes == [[0.0, 0.0, 5.0, 5.0], [8.0, 9.0, 20.0, 21.0]]
    assert labels == ["Where is the small red circle?"] * 2


@pytest.mark.parametrize(("problem_type", "data_type"), [("box", "video"), ("multiple choice", "image")])
def test_samples_that_are_not_box_images_have_no_scene_objects(problem_type, data_type):
    assert scene_objects(_sample(problem_type, {"box_original": [1, 1, 2, 2]}, data_type)) == ([], [])
