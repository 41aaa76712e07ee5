"""The prompts of a frame-search rollout (TimeSearch-R, arXiv 2511.05489) and of its self-verification.

A search rollout's system turn describes the `seek_video_frames` tool in the function-calling layout that
Qwen2.5 models are trained on (signatures inside ``<tools></tools>``, calls as a JSON object inside
``<tool_call></tool_call>``); the user turn is the preview video followed by `search_question`. The
verification conversation shows only retrieved frames and asks the bare question (`VERIFY_SYSTEM_PROMPT`).
"""

from __future__ import annotations

import json

from data_pipelines.prompts import SHORT_TYPE_TEMPLATES, question_with_options
from data_pipelines.schema import Sample

TOOL_NAME = "seek_video_frames"
MAX_FRAMES_PER_CALL = 8

TOOL_SCHEMA = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": (
            "Search and select video frames according to textual query and temporal window. "
            "Time is in seconds."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "The textual query to search frames."},
                "start_time": {"type": "number", "description": "Start of the window in seconds."},
                "end_time": {"type": "number", "description": "End of the window in seconds."},
                "num_frames": {
                    "type": "integer",
                    "description": f"Number of frames to return, maximum {MAX_FRAMES_PER_CALL}, default {MAX_FRAMES_PER_CALL}.",
                },
            },
            "required": ["query"],
        },
    },
}

_TOOLS_BLOCK = (
    "# Tools\n\n"
    "You may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n"
    "<tools>\n{schemas}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n"
    "<tool_call>\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n'
    "</tool_call>"
)

SEARCH_SYSTEM_PROMPT = "You are a helpful video assistant.\n" + _TOOLS_BLOCK.format(schemas=json.dumps(TOOL_SCHEMA))
"""The system turn of a search rollout: the assistant's role and the tool's signature."""

_QUESTION_LINES = (
    "You must ALWAYS conduct thorough reasoning inside <think> and </think> tags BEFORE calling any tool or answering the question.\n"
    "You must invoke tools to explore any video content you are interested in within <tool_call> </tool_call> tags.\n"
    "You are allowed to use <tool_call></tool_call> tags for a maximum of {max_turns} rounds.\n"
    "When you have enough information to answer the question, provide your answer within <answer> </answer> tags. "
    "Your answer should be supported by evidence from the video.\n"
    "Your output must follow the format: <think>Your reasoning process</think><tool_call>Parameters</tool_call> or "
    "<think>Your reasoning process</think><answer>Your answer</answer>Question: {question}\n"
)
_MC_LINE = "Answer with the option's letter from the given choices within <answer> </answer> tags.\n"
_DURATION_LINE = "The video duration: {duration} seconds.\n"

SHORT_SEARCH_SYSTEM_PROMPT = (
    f"Tool: {TOOL_NAME}(query, start_time, end_time, num_frames) returns up to {MAX_FRAMES_PER_CALL} frames of the "
    f'video. Call: <tool_call>{{"name": "{TOOL_NAME}", "arguments": {{...}}}}</tool_call>'
)
"""The ``timesearch_short`` system turn: the tool in two sentences, for tiny models on a CPU."""

VERIFY_SYSTEM_PROMPT = (
    "You are a helpful assistant. Please answer visual questions as briefly as possible. "
    "When you don't have enough visual information, please say 'I don't know'."
)
"""The system turn of the frames-only verification conversation (GRPO-CSV)."""

I_DONT_KNOW = "I don't know"
"""The verifier's answer when a rollout retrieved no frame (no generation is run)."""


def search_question(sample: Sample, duration: float, max_turns: int = 8) -> str:
    """The user text after the preview video: the search instructions, the question (options inline for
    multiple choice), the answer-letter line for multiple choice, and the video's duration."""
    text = _QUESTION_LINES.format(max_turns=max_turns, question=question_with_options(sample))
    if sample.problem_type == "multiple choice":
        text += _MC_LINE
    return text + _DURATION_LINE.format(duration=_seconds(duration))


def short_search_question(sample: Sample, duration: float) -> str:
    """The ``timesearch_short`` user text: the question, one line on the turn format, the duration."""
    return (
        f"{question_with_options(sample)}\nThink in <think> </think>, search with <tool_call> </tool_call>, "
        f"answer in <answer> </answer>.{SHORT_TYPE_TEMPLATES[sample.problem_type]} Duration: {_seconds(duration)} s."
    )


def verify_question(sample: Sample) -> str:
    """The last text item of the verification turn: the raw question, no instructions."""
    return f"Question: {question_with_options(sample)}"


def _seconds(duration: float) -> str:
    """``12`` for a whole number of seconds, else one decimal (``12.5``)."""
    return str(int(duration)) if float(duration).is_integer() else f"{duration:.1f}"
