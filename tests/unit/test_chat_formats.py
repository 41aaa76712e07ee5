"""Chat-message records (qwen-vl-utils / TRL and LLaMA-Factory ShareGPT): samples, rendered prompts, SFT targets,
dispatch and every refusal."""

from __future__ import annotations

import dataclasses

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from data_pipelines.formats import load_benchmark_samples, load_chat_messages, record_format
from data_pipelines.formats.chat_messages import SYSTEM_KEY
from data_pipelines.prompts import MMVU_TEMPLATES, QUESTION_TEMPLATES, build_prompt_text, sft_target
from data_pipelines.schema import RecordError
from data_pipelines.synthetic.mp4 import write_mp4
from data_pipelines.synthetic.perception import write_png

QUESTION = "What color is the ball?\nA. red\nB. blue\nC. green\n"
THOUGHT_AND_ANSWER = "<think>The ball looks blue.</think><answer>B</answer>"

QWEN_RECORD = {
    "id": "qwen-0",
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "video", "video": "clips/ball.mp4", "fps": 1.0, "max_pixels": 50176},
                {"type": "image", "image": "frames/last.png"},
                {"type": "text", "text": QUESTION},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": THOUGHT_AND_ANSWER}]},
    ],
    "source": "demo",
}
TRL_RECORD = {
    "messages": [
        {"role": "user", "content": [{"type": "image", "image": None, "text": None}, {"type": "text", "text": "How many dots?", "image": None}]},
        {"role": "assistant", "content": "There are 3 dots."},
    ],
    "images": ["frames/last.png"],
    "solution": "3",
    "problem_type": "numerical",
}
LLAMA_FACTORY_RECORD = {
    "messages": [
        {"role": "user", "content": "<video><image>What is the ball doing?"},
        {"role": "assistant", "content": "It rolls to the left."},
    ],
    "images": ["frames/last.png"],
    "videos": ["clips/ball.mp4"],
}
SHAREGPT_RECORD = {
    "conversations": [
        {"from": "human", "value": "<image>Which option is right?\n(A) up\n(B) down"},
        {"from": "gpt", "value": "<answer>A</answer>"},
    ],
    "system": "You look at images.",
    "images": ["frames/last.png"],
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A dataset folder holding a real mp4 and a real png."""
    frames = np.stack([np.full((28, 28, 3), 50 * t, dtype=np.uint8) for t in range(4)])
    write_mp4(tmp_path / "clips" / "ball.mp4", frames, 4.0)
    (tmp_path / "frames").mkdir()
    write_png(tmp_path / "frames" / "last.png", np.full((1, 28, 28, 3), 200, dtype=np.uint8))
    return tmp_path


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def load_one(root: Path, record: dict[str, Any]) -> Any:
    (sample,) = load_chat_messages(write_jsonl(root / "chat.jsonl", [record]))
    return sample


# --- samples ------------------------------------------------------------------------------------


def test_qwen_parts_give_media_in_order_overrides_and_the_assistant_turn_as_target(root: Path) -> None:
    sample = load_one(root, QWEN_RECORD)
    assert sample.sample_id == "qwen-0" and sample.origin == f"{root / 'chat.jsonl'}#1"
    assert sample.data_type == "video" and sample.media_path == (root / "clips" / "ball.mp4").absolute()
    assert sample.extra_images == ((root / "frames" / "last.png").absolute(),)
    assert dict(sample.media_overrides) == {"fps": 1.0, "max_pixels": 50176}
    assert sample.problem == QUESTION
    assert sample.problem_type == "multiple choice" and sample.answer == "B" and sample.solution == "<answer>B</answer>"
    assert sample.options == () and sample.extra["source"] == "demo"
    assert sft_target(sample) == THOUGHT_AND_ANSWER


def test_trl_parts_without_paths_take_the_images_list_and_the_solution_field(root: Path) -> None:
    sample = load_one(root, TRL_RECORD)
    assert sample.data_type == "image" and sample.media_path == (root / "frames" / "last.png").absolute()
    assert sample.problem == "How many dots?" and sample.problem_type == "numerical"
    assert sample.answer == "3" and sft_target(sample) == "There are 3 dots."
    assert dict(sample.media_overrides) == {}


def test_llama_factory_placeholders_take_videos_and_images_in_placeholder_order(root: Path) -> None:
    sample = load_one(root, LLAMA_FACTORY_RECORD)
    assert sample.data_type == "video" and sample.media_path.name == "ball.mp4"
    assert [p.name for p in sample.extra_images] == ["last.png"]
    assert sample.problem == "What is the ball doing?"
    assert sample.answer == "It rolls to the left." and sample.problem_type == "free-form"
    swapped = {**LLAMA_FACTORY_RECORD, "messages": [{"role": "user", "content": "<image><video>Q?"}]}
    with pytest.raises(RecordError, match=r"at most one video, and only as its first media item"):
        load_one(root, {**swapped, "solution": "x"})


def test_sharegpt_conversations_with_system_and_options(root: Path) -> None:
    sample = load_one(root, SHAREGPT_RECORD)
    assert sample.data_type == "image" and sample.extra_images == ()
    assert sample.problem == "Which option is right?\n(A) up\n(B) down"
    assert sample.problem_type == "multiple choice" and sample.answer == "A"
    assert sample.extra[SYSTEM_KEY] == "You look at images." and "system" not in set(sample.extra) - {SYSTEM_KEY}


def test_text_only_record_with_several_user_turns_and_answer_inferences(root: Path) -> None:
    record = {
        "messages": [
            {"role": "user", "content": "Pick all primes."},
            {"role": "user", "content": "A. 2\nB. 4\nC. 5"},
            {"role": "assistant", "content": "<answer>A, C</answer>"},
        ]
    }
    sample = load_one(root, record)
    assert sample.data_type == "text" and sample.media_path is None
    assert sample.problem == "Pick all primes.\nA. 2\nB. 4\nC. 5"
    assert sample.problem_type == "multi-answer" and sample.answer == "A, C"
    # A letter that is not among the listed options, or no option list, stays free-form.
    lone = {"messages": [{"role": "user", "content": "Which letter follows A?"}, {"role": "assistant", "content": "B"}]}
    assert load_one(root, lone).problem_type == "free-form"


def test_prompt_only_record_takes_the_answer_field_and_its_target_is_the_answer_block(root: Path) -> None:
    record = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Name the shape."}]}], "answer": 7}
    sample = load_one(root, record)
    assert sample.answer == "7" and sft_target(sample) == "<answer>7</answer>"


def test_paths_resolve_under_media_root_and_file_urls(root: Path, tmp_path_factory) -> None:
    elsewhere = tmp_path_factory.mktemp("annotations")
    record = {**TRL_RECORD, "images": ["file://frames/last.png"]}
    path = write_jsonl(elsewhere / "chat.jsonl", [record])
    with pytest.raises(RecordError, match=r"line 1: field 'images\[0\]': media file .* not found; pass media_root="):
        load_chat_messages(path)
    (sample,) = load_chat_messages(path, media_root=root)
    assert sample.media_path == (root / "frames" / "last.png").absolute()


# --- prompts ------------------------------------------------------------------------------------


def test_chat_prompt_is_used_verbatim_under_every_template(root: Path) -> None:
    sample = load_one(root, QWEN_RECORD)
    for template in [*QUESTION_TEMPLATES, *MMVU_TEMPLATES]:
        assert build_prompt_text(sample, template) == QUESTION
    with pytest.raises(ValueError, match="unknown prompt template"):
        build_prompt_text(sample, "nope")


@pytest.fixture(scope="module")
def encoder(tiny_model_dir):
    from vlm_rl.config import load_config
    from vlm_rl.models.loading import load_adapter
    from vlm_rl.models.prompt_encoder import PromptEncoder

    repo = Path(__file__).resolve().parents[2]
    config = load_config(repo / "configs" / "quickstart_sft.yaml", [f"model.path={tiny_model_dir}"])
    return PromptEncoder(load_adapter(str(tiny_model_dir)), config.data)


VISION = "<|vision_start|>{}<|vision_end|>"
HEAD = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
TAIL = "<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize(
    ("record", "rendered"),
    [
        (QWEN_RECORD, HEAD + VISION.format("<|video_pad|>") + VISION.format("<|image_pad|>") + QUESTION + TAIL),
        (TRL_RECORD, HEAD + VISION.format("<|image_pad|>") + "How many dots?" + TAIL),
        (
            LLAMA_FACTORY_RECORD,
            HEAD + VISION.format("<|video_pad|>") + VISION.format("<|image_pad|>") + "What is the ball doing?" + TAIL,
        ),
    ],
    ids=["qwen", "trl", "llama_factory"],
)
def test_rendered_prompt_is_golden_and_matches_the_record_rendered_by_the_processor(encoder, root, record, rendered):
    sample = load_one(root, record)
    assert encoder.text(sample) == rendered
    if isinstance(record["messages"][0]["content"], list):
        with_paths = json.loads(json.dumps(record["messages"][:1]).replace('"image": null', '"image": "x.png"'))
        own = encoder.adapter.render(with_paths, add_generation_prompt=True)
        assert encoder.text(sample) == own
    inputs = encoder.encode(sample)
    assert (inputs.video_grid_thw is not None) == (sample.data_type == "video")
    assert inputs.image_grid_thw is not None and len(inputs.image_grid_thw) == 1


def test_the_records_system_turn_replaces_the_default_system_prompt(encoder, root) -> None:
    sample = load_one(root, SHAREGPT_RECORD)
    system = "<|im_start|>system\nYou look at images.<|im_end|>\n<|im_start|>user\n"
    assert encoder.text(sample) == system + VISION.format("<|image_pad|>") + "Which option is right?\n(A) up\n(B) down" + TAIL


def test_a_system_field_of_another_format_is_not_a_system_turn(encoder, root) -> None:
    sample = dataclasses.replace(load_one(root, TRL_RECORD), extra={"system": "from a Video-R1 record"})
    assert encoder.text(sample).startswith(HEAD)


def test_sft_target_tokens_are_the_assistant_text(encoder, root) -> None:
    tokenizer = encoder.adapter.tokenizer
    sample = load_one(root, QWEN_RECORD)
    ids = tokenizer(sft_target(sample), add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == THOUGHT_AND_ANSWER


# --- dispatch -----------------------------------------------------------------------------------


def test_record_format_tells_chat_records_from_vlm_r1_and_video_r1() -> None:
    assert record_format(QWEN_RECORD) == record_format(LLAMA_FACTORY_RECORD) == "chat_messages"
    assert record_format(SHAREGPT_RECORD) == record_format({**TRL_RECORD}) == "chat_messages"
    vlm_r1 = {"id": 1, "image": "a.png", "conversations": SHAREGPT_RECORD["conversations"]}
    assert record_format(vlm_r1) == "vlm_r1"
    assert record_format({"conversations": SHAREGPT_RECORD["conversations"]}) is None
    assert record_format({"problem": "q", "solution": "<answer>1</answer>"}) == "video_r1"


def test_dispatcher_reads_chat_files_and_names_chat_in_the_unknown_shape_error(root: Path) -> None:
    path = write_jsonl(root / "mixed.jsonl", [LLAMA_FACTORY_RECORD, SHAREGPT_RECORD])
    assert load_benchmark_samples(path) == load_chat_messages(path)
    unknown = write_jsonl(root / "unknown.jsonl", [{"conversations": []}])
    with pytest.raises(RecordError, match=r"chat messages \(messages, or conversations \+ images\|videos\)"):
        load_benchmark_samples(unknown)


# --- refusals -----------------------------------------------------------------------------------


def with_messages(*turns: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"messages": list(turns), **fields}


USER = {"role": "user", "content": "Q?"}
ASSISTANT = {"role": "assistant", "content": "A."}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({**LLAMA_FACTORY_RECORD, "images": []}, r"field 'messages\[0\]' asks for image 1 .* 'images' holds 0"),
        ({**LLAMA_FACTORY_RECORD, "images": ["frames/last.png"] * 2}, r"field 'images' holds 2 paths but the user turns ask for 1"),
        ({**TRL_RECORD, "images": ["frames/missing.png"]}, r"field 'images\[0\]': media file .*missing.png not found"),
        (with_messages(USER, ASSISTANT, USER, ASSISTANT), r"field 'messages\[1\]': the assistant turn must be the last turn"),
        (with_messages(USER, {"role": "system", "content": "s"}, ASSISTANT), r"'messages\[1\]': a system turn after a user turn"),
        (with_messages({"role": "tool", "content": "x"}, ASSISTANT), r"field 'messages\[0\].role' is 'tool'"),
        (with_messages(ASSISTANT), r"field 'messages' has no user turn"),
        (with_messages(USER), r"field 'solution' is missing and 'messages' has no assistant turn"),
        (with_messages(USER, ASSISTANT, problem_type="essay"), r"field 'problem_type' is 'essay', not a known type"),
        (with_messages(USER, ASSISTANT, problem_type="box"), r"field 'problem_type' is 'box'.*Video-R1 format"),
        (with_messages(USER, ASSISTANT, problem_type="multiple choice"), r"answer 'A.' is not option letters"),
        (
            with_messages({"role": "user", "content": [{"type": "image", "image": "http://x/a.png"}, {"type": "text", "text": "Q"}]}, ASSISTANT),
            r"field 'messages\[0\].content\[0\].image' is a URL",
        ),
        (
            with_messages({"role": "user", "content": [{"type": "image", "image": "frames/last.png", "max_pixels": 9}]}, ASSISTANT),
            r"field 'messages\[0\].content\[0\]' has unsupported key\(s\) max_pixels; image parts take no sampling keys",
        ),
        (
            with_messages({"role": "user", "content": [{"type": "video", "video": "clips/ball.mp4", "fps": -1}]}, ASSISTANT),
            r"field 'messages\[0\].content\[0\].fps' must be a positive number",
        ),
        (
            with_messages({"role": "user", "content": [{"type": "video", "video": ["a.png", "b.png"]}]}, ASSISTANT),
            r"field 'messages\[0\].content\[0\].video' must be a file path.*list of frames is not supported",
        ),
        (
            with_messages(USER, {"role": "assistant", "content": [{"type": "image", "image": "frames/last.png"}]}),
            r"field 'messages\[1\].content' must hold only text parts",
        ),
        (with_messages({"role": "user", "content": "<image>"}, ASSISTANT, images=["frames/last.png"]), r"user turns hold no text"),
        (
            {"conversations": [{"from": "human", "value": "<image>Q"}, {"from": "observation", "value": "x"}], "images": ["frames/last.png"]},
            r"field 'conversations\[1\].from' is 'observation'",
        ),
    ],
    ids=lambda value: None if isinstance(value, dict) else re.sub(r"\W+", "_", value)[:40],
)
def test_refusals_name_record_and_field(root: Path, record: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError, match=r"chat.jsonl line 1: .*" + message):
        load_one(root, record)


def test_media_after_text_and_joined_turns_are_counted_in_one_log_line(root: Path, caplog) -> None:
    record = {"messages": [{"role": "user", "content": "Look: <image> what is it?"}, ASSISTANT], "images": ["frames/last.png"]}
    path = write_jsonl(root / "chat.jsonl", [record, record, LLAMA_FACTORY_RECORD])
    with caplog.at_level("WARNING", logger="data_pipelines.formats.chat_messages"):
        samples = load_chat_messages(path)
    assert samples[0].problem == "Look:  what is it?"
    (line,) = [r.getMessage() for r in caplog.records]
    assert "2 records with media after text" in line and "user turns joined" not in line
