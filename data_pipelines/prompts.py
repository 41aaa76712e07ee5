"""Question text for a sample: the Video-R1 templates (byte-for-byte) and a short variant.

The Video-R1 training and evaluation templates differ only in ``<think> </think> tags`` versus
``<think> and </think> tags``; both keep the original missing period after "thought expressions".
The ``short`` template is for tiny models, whose prompt length is a large share of the compute.
SEED-Bench-R1 (GRPO-CARE) and "MMVU (mc)" use the Video-R1 templates unchanged: ``video_r1_eval``
for evaluation, ``video_r1_train`` for training. `MMVU_TEMPLATES` hold MMVU's official prompts.
Chat records (`VERBATIM_PROMPT`, `SFT_TARGET`) bring their own user turn and assistant turn; no template applies.
"""

from __future__ import annotations

import re

from data_pipelines.schema import Sample

VERBATIM_PROMPT = "verbatim_prompt"
"""`Sample.extra` flag: `Sample.problem` is the record's own user turn, used as written under every template."""
SFT_TARGET = "sft_target"
"""`Sample.extra` key: the record's own assistant turn, the SFT target as written."""

_PONDER = (
    "{Question}\nPlease think about this question as if you were a human pondering deeply. Engage in "
    "an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', "
    "'let's break it down', etc, or other natural language thought expressions It's encouraged to "
    "include self-reflection or verification in the reasoning process. Provide your detailed "
    "reasoning between the <think>{sep}</think> tags, and then give your final answer between the "
    "<answer>{sep}</answer> tags."
)

QUESTION_TEMPLATES: dict[str, str] = {
    "video_r1_train": _PONDER.replace("{sep}", " "),
    "video_r1_eval": _PONDER.replace("{sep}", " and "),
    "short": "{Question}\nThink in <think> </think>, then answer in <answer> </answer>.",
}

TYPE_TEMPLATES: dict[str, str] = {
    "multiple choice": " Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags.",
    "numerical": " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
    "OCR": " Please transcribe text from the image/video clearly and provide your text answer within the <answer> </answer> tags.",
    "free-form": " Please provide your text answer within the <answer> </answer> tags.",
    "regression": " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
    "multi-answer": " Please provide all correct option letters separated by , within the <answer> </answer> tags.",
    "grounding": ' Please provide the start and end time in seconds as {"start_time": s, "end_time": e} within the <answer> </answer> tags.',
    "sequence": " Please provide the order of the events as their indices, e.g. (b)(a)(c), within the <answer> </answer> tags.",
    "box": " Please provide the bounding box of the object as [x1, y1, x2, y2] in pixels within the <answer> </answer> tags.",
    "detection": " Please provide the bounding boxes of all such objects as a list [[x1, y1, x2, y2], ...] in pixels "
    "([] if there are none) within the <answer> </answer> tags.",
}

SHORT_TYPE_TEMPLATES: dict[str, str] = {
    "multiple choice": " Give one letter.",
    "numerical": " Give a number.",
    "OCR": " Give the text.",
    "free-form": " Give a short answer.",
    "regression": " Give a number.",
    "multi-answer": " Give all letters, separated by ,.",
    "grounding": ' Give {"start_time": s, "end_time": e} in seconds.',
    "sequence": " Give the order, e.g. (b)(a)(c).",
    "box": " Give [x1, y1, x2, y2] in pixels.",
    "detection": " Give [[x1, y1, x2, y2], ...] in pixels.",
}

_MMVU_QUESTION = "\nQuestion: {Question}\n"
MMVU_TEMPLATES: dict[str, dict[str, str]] = {
    "mmvu_cot": {
        "multiple choice": _MMVU_QUESTION + "{Options}\n\nAnswer the given multiple-choice question step by step. "
        "Begin by explaining your reasoning process clearly. Conclude by stating the final answer using the following "
        "format: 'Therefore, the final answer is: $LETTER' (without quotes), where $LETTER is one of the options. "
        "Think step by\nstep before answering.",
        "free-form": _MMVU_QUESTION + "\nAnswer the given question step by step. Begin by explaining your reasoning "
        "process clearly. Conclude by stating the final answer using the following format: 'Therefore, the final "
        "answer is: 'Answer: $ANSWER' (without quotes), where $ANSWER is the final answer of the question. Think step "
        "by step\nbefore answering.",
    },
    "mmvu_direct": {
        "multiple choice": _MMVU_QUESTION + "{Options}\n\nDo not generate any intermediate reasoning process. Answer "
        "directly with the option letter from the given choices.\n",
        "free-form": _MMVU_QUESTION + "\nDo not generate any intermediate reasoning process. Directly output the final "
        "short answer.\n",
    },
}
"""MMVU's official prompts (yale-nlp/MMVU ``utils/constant.py``: chain of thought, direct output), byte-for-byte,
by problem type: they start with a newline, list options as ``"A: text"`` and add no type suffix; the
chain-of-thought ones keep the original line break inside "Think step by step"."""

_OPTION_TEXT = re.compile(r"\(?[A-Z](?:[.:]|\))?\s(.*)", re.DOTALL)


def question_with_options(sample: Sample) -> str:
    """Video-R1's question: the problem, then ``Options:`` and one option per line (no newline before ``Options:``).

    TW-GRPO records already list their options inside ``problem``; those are left as they are.
    """
    if sample.problem_type in ("multiple choice", "multi-answer") and sample.options and not sample.extra.get("options_in_problem"):
        return sample.problem + "Options:\n" + "".join(o + "\n" for o in sample.options)
    return sample.problem


def build_prompt_text(sample: Sample, template: str = "video_r1_train") -> str:
    """The user-turn text for `sample` under the named template (a `VERBATIM_PROMPT` sample's problem as written)."""
    if template not in QUESTION_TEMPLATES and template not in MMVU_TEMPLATES:
        names = sorted([*QUESTION_TEMPLATES, *MMVU_TEMPLATES])
        raise ValueError(f"unknown prompt template {template!r}; choose one of {names}")
    if sample.extra.get(VERBATIM_PROMPT):
        return sample.problem
    if template in MMVU_TEMPLATES:
        return _mmvu_prompt_text(sample, template)
    types = SHORT_TYPE_TEMPLATES if template == "short" else TYPE_TEMPLATES
    return QUESTION_TEMPLATES[template].format(Question=question_with_options(sample)) + types[sample.problem_type]


def _mmvu_prompt_text(sample: Sample, template: str) -> str:
    """MMVU's official wording: ``"A: text"`` option lines for multiple choice, none for free-form."""
    wordings = MMVU_TEMPLATES[template]
    if sample.problem_type not in wordings:
        raise ValueError(
            f"template {template!r} has no wording for problem type {sample.problem_type!r}; "
            f"it covers {', '.join(repr(t) for t in wordings)}"
        )
    if sample.problem_type == "free-form":
        return wordings["free-form"].format(Question=sample.problem)
    if not sample.options:
        raise ValueError(f"{sample.origin}: template {template!r} needs the options of a multiple-choice sample")
    lines = []
    for option, letter in zip(sample.options, sample.option_letters):
        text = _OPTION_TEXT.fullmatch(option)
        if text is None:
            raise ValueError(f"{sample.origin}: option {option!r} has no text after its letter label")
        lines.append(f"{letter}: {text.group(1)}")
    return wordings["multiple choice"].format(Question=sample.problem, Options="\n".join(lines))


def sft_target(sample: Sample) -> str:
    """The assistant turn for SFT: the record's own (`SFT_TARGET`), else ``process + "\\n" + solution`` (Video-R1), or
    the solution alone."""
    if SFT_TARGET in sample.extra:
        return sample.extra[SFT_TARGET]
    if sample.process:
        return sample.process + "\n" + sample.solution
    return sample.solution
