"""Question text for a sample: the Video-R1 templates (byte-for-byte) and a short variant.

The Video-R1 training and evaluation templates differ only in ``<think> </think> tags`` versus
``<think> and </think> tags``; both keep the original missing period after "thought expressions".
The ``short`` template is for tiny models, whose prompt length is a large share of the compute.
"""

from __future__ import annotations

from data_pipelines.schema import Sample

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
}

SHORT_TYPE_TEMPLATES: dict[str, str] = {
    "multiple choice": " Give one letter.",
    "numerical": " Give a number.",
    "OCR": " Give the text.",
    "free-form": " Give a short answer.",
    "regression": " Give a number.",
    "multi-answer": " Give all letters, separated by ,.",
}


def question_with_options(sample: Sample) -> str:
    """Video-R1's question: the problem, then ``Options:`` and one option per line (no newline before ``Options:``).

    TW-GRPO records already list their options inside ``problem``; those are left as they are.
    """
    if sample.problem_type in ("multiple choice", "multi-answer") and sample.options and not sample.extra.get("options_in_problem"):
        return sample.problem + "Options:\n" + "".join(o + "\n" for o in sample.options)
    return sample.problem


def build_prompt_text(sample: Sample, template: str = "video_r1_train") -> str:
    """The user-turn text for `sample` under the named template."""
    if template not in QUESTION_TEMPLATES:
        raise ValueError(f"unknown prompt template {template!r}; choose one of {sorted(QUESTION_TEMPLATES)}")
    types = SHORT_TYPE_TEMPLATES if template == "short" else TYPE_TEMPLATES
    return QUESTION_TEMPLATES[template].format(Question=question_with_options(sample)) + types[sample.problem_type]


def sft_target(sample: Sample) -> str:
    """The assistant turn for SFT: ``process + "\\n" + solution`` (Video-R1), or the solution alone."""
    if sample.process:
        return sample.process + "\n" + sample.solution
    return sample.solution
