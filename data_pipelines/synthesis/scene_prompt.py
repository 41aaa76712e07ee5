"""What Syn-GRPO's policy is asked when it describes a new scene, what of its answer is the description, and which
objects of a perception sample a synthesised image must keep.
"""

from __future__ import annotations

from typing import Any

from data_pipelines.completion_format import answer_or_text
from data_pipelines.formats.box_answers import BOX_TYPES
from data_pipelines.schema import Sample

SCENE_PROMPT = (
    "Keep every object in this picture exactly where it is and describe a new background for them in one line: "
    "its colours and its pattern (stripes, dots, grid or noise)."
)
"""The user turn, after the sample's image, of a description prompt."""
MAX_DESCRIPTION_CHARS = 2000
"""The longest description a job carries (the synthesis server refuses longer ones)."""


def description_text(completion: str) -> str:
    """The description a completion writes: its answer block's content when it has one, else all of it; on one line,
    at most `MAX_DESCRIPTION_CHARS` characters."""
    return " ".join(answer_or_text(completion).split())[:MAX_DESCRIPTION_CHARS]


def scene_objects(sample: Sample) -> tuple[list[list[float]], list[str]]:
    """Boxes (original image pixels) and labels of the objects a synthesised image of `sample` keeps.

    Every object of the record's ``objects`` field when it has one (the embedded perception tasks: the target, the
    distractor and the rest, labelled "size colour shape"), else the answer's boxes, each labelled with the
    question (so the generator keeps the colours and kinds it names out of the new background). Empty for a sample
    that is not a box or detection image.
    """
    if sample.data_type != "image" or sample.problem_type not in BOX_TYPES:
        return [], []
    objects: Any = sample.extra.get("objects")
    if isinstance(objects, list) and objects:
        boxes = [[float(v) for v in item["box"]] for item in objects]
        labels = [" ".join(str(item[key]) for key in ("size", "color", "shape") if key in item) for item in objects]
        return boxes, labels
    if sample.problem_type == "box":
        boxes = [[float(v) for v in sample.extra["box_original"]]]
    else:
        boxes = [[float(v) for v in box] for box in sample.extra["boxes_original"]]
    return boxes, [sample.problem] * len(boxes)
