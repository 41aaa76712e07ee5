"""Reader for VLM-R1's referring-expression (REC) records (arXiv 2504.07615), ``.jsonl`` or a ``.json`` list.

A record: ``id``, ``image`` (a path under the image root) and ``conversations``, a human turn with the
question (``"<image>Please provide the bounding box coordinate of the region this sentence describes: the
man in red."``) and a model turn with the box ``"[x1, y1, x2, y2]"`` (or ``{"bbox_2d": [...]}``) in original
image pixels. Every record becomes a ``box`` image sample whose answer is that box in the pixels of the
resized image the model sees (`box_answers`); the original box and both sizes are kept in `Sample.extra`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_pipelines.completion_format import answer_or_text
from data_pipelines.formats.box_answers import ImageBoxes
from data_pipelines.image_size import IMAGE_MAX_PIXELS, IMAGE_MIN_PIXELS
from data_pipelines.record_files import checked_media_file, kind, media_path, read_samples, short
from data_pipelines.schema import RecordError, Sample

IMAGE_TOKEN = "<image>"
"""The placeholder VLM-R1 puts where the image goes; the question is the human turn without it."""
_TURNS = ("human", "gpt")


def load_vlm_r1(
    path: str | Path,
    *,
    media_root: str | Path | None = None,
    limit: int | None = None,
    image_min_pixels: int = IMAGE_MIN_PIXELS,
    image_max_pixels: int = IMAGE_MAX_PIXELS,
) -> list[Sample]:
    """Read the first `limit` (default all) REC records of `path` as ``box`` samples.

    Images are taken under `media_root` (VLM-R1's image folder; default the file's directory) and resized
    within the image pixel bounds (``data.image``). Raises RecordError, one line naming file, record and
    field, for a record of another shape, a missing or unreadable image, or a box that is malformed or lies
    outside its image.
    """
    boxes = ImageBoxes(min_pixels=image_min_pixels, max_pixels=image_max_pixels)

    def convert(record: Any, label: str, origin: str, root: Path, sizes: dict[Path, int]) -> Sample:
        return _to_sample(record, label=label, origin=origin, root=root, sizes=sizes, boxes=boxes)

    return read_samples(path, convert, media_root=media_root, limit=limit)


def _to_sample(
    record: Any, *, label: str, origin: str, root: Path, sizes: dict[Path, int], boxes: ImageBoxes
) -> Sample:
    if not isinstance(record, dict):
        raise RecordError(f"{label}: expected a JSON object with id, image and conversations, got a {kind(record)}")
    raw = record.get("image")
    if not isinstance(raw, str) or not raw.strip():
        raise RecordError(
            f"{label}: field 'image' must be the path of one image under the image root, got {short(raw)}"
        )
    image = checked_media_file(
        media_path(raw, root), root=root, key="image", label=label, hint="VLM-R1's image folder", sizes=sizes, raw=raw
    )
    question, answer_text = _turn_texts(record.get("conversations"), label)
    answer, extra = boxes.answer(
        answer_or_text(answer_text), "box", image,
        label=label, field="conversations", image_key="image",
    )
    sample_id = record.get("id")
    return Sample(
        sample_id=origin if sample_id is None else str(sample_id),
        problem=question,
        problem_type="box",
        data_type="image",
        media_path=image,
        options=(),
        solution=f"<answer>{answer}</answer>",
        answer=answer,
        origin=origin,
        extra=extra,
    )


def _turn_texts(conversations: Any, label: str) -> tuple[str, str]:
    """The question (the human turn without `IMAGE_TOKEN`) and the model turn's text."""
    if (
        not isinstance(conversations, list)
        or len(conversations) != 2
        or not all(isinstance(turn, dict) for turn in conversations)
        or tuple(turn.get("from") for turn in conversations) != _TURNS
        or not all(isinstance(turn.get("value"), str) for turn in conversations)
    ):
        raise RecordError(
            f"{label}: field 'conversations' must be a human turn then a gpt turn, each "
            f'{{"from": ..., "value": "text"}}, got {short(conversations)}'
        )
    question = conversations[0]["value"].replace(IMAGE_TOKEN, "").strip()
    if not question:
        raise RecordError(f"{label}: field 'conversations': the human turn holds no question besides {IMAGE_TOKEN}")
    return question, conversations[1]["value"]
