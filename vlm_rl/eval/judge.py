"""MMVU official-mode scoring (MMVU, arXiv 2501.12380): a conservative rule-based pre-check, then an LLM judge.

The official MMVU evaluation (yale-nlp/MMVU ``acc_evaluation.py``) asks GPT-4o, for every response, to extract the
final answer and compare it with the ground truth (structured output ``{extracted_answer, correct}``,
``max_tokens=128``); a judge failure counts as wrong. lmms-eval's MMVU task puts rule-based checks in front of the
judge. Here :func:`matching_rule` runs a stricter version of those checks and may only say "correct"; whatever it
does not decide goes to :class:`OpenAIJudge`, an OpenAI-compatible chat-completions client built on ``urllib``.
:func:`score_official` chains the two (`vlm_rl.eval.runner.JudgeScorer` scores an evaluation with it).

Question types are MMVU's (``"multiple-choice"``, ``"open-ended"``) or the `Sample.problem_type` they become
(``"multiple choice"``, ``"free-form"``). Choices are MMVU's letter → text mapping (open-ended records carry empty
texts, which are ignored) or `Sample.options` (``"A. text"``).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import string
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from data_pipelines.completion_format import ANSWER, THINK, find_answer, tag_pattern

Choices = Mapping[str, str] | Sequence[str]
"""MMVU ``choices`` (``{"A": "text", ...}``) or `Sample.options` (``("A. text", ...)``)."""

Method = Literal["rule", "judge", "judge_error"]
ResponseFormat = Literal["json_schema", "json_object"]

_MC_TYPES = frozenset({"multiple-choice", "multiple choice"})
_OPEN_TYPES = frozenset({"open-ended", "free-form"})

# ---------------------------------------------------------------------------------------------------------------
# Rule-based pre-check
# ---------------------------------------------------------------------------------------------------------------

SHORT_RESPONSE_WORDS = 10
"""A response with no final-answer marker and no ``<answer>`` block is rule-checked only up to this many words."""

_MARKER_RE = re.compile(r"the final answer is", re.IGNORECASE)
_TAG_RE = tag_pattern(ANSWER, THINK, ignore_case=True)
_ANSWER_PREFIX_RE = re.compile(r"^answer\s*:\s*", re.IGNORECASE)
_OPTION_LINE_RE = re.compile(r"^\s*([A-Z])\.\s*(.*?)\s*$", re.DOTALL)
_STANDALONE_CAPITAL_RE = re.compile(r"(?<![A-Za-z0-9])([A-Z])(?![A-Za-z0-9])")
_NEGATION_RE = re.compile(r"\b(?:not|no|never|none|neither|nor|cannot)\b|n't\b")
_BARE_NUMBER_RE = re.compile(r"[-+]?(?:\d+(?:\.\d+)?|\.\d+)")
_NUMBER_RE = re.compile(r"(?<![\w.^])-?(?:\d+(?:\.\d+)?|\.\d+)")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_BIG_O_RE = re.compile(r"\bo\s*\(([^()]*)\)")
_SUPERSCRIPTS = str.maketrans({sup: f"^{digit}" for digit, sup in enumerate("⁰¹²³⁴⁵⁶⁷⁸⁹")})
_EDGE_CHARS = " \t\r\n'\"`*“”‘’"
_TRAILING_PUNCTUATION = ".,;:!"


def _question_kind(question_type: str) -> Literal["mc", "open"]:
    if question_type in _MC_TYPES:
        return "mc"
    if question_type in _OPEN_TYPES:
        return "open"
    known = ", ".join(repr(t) for t in sorted(_MC_TYPES | _OPEN_TYPES))
    raise ValueError(f"unknown question_type {question_type!r}; expected one of {known}")


def choice_map(choices: Choices) -> dict[str, str]:
    """Letter → text with empty texts dropped; ``"A. text"`` strings are split at the first ``". "``.

    Raises ValueError for an option string that does not start with a capital letter and a period.
    """
    if isinstance(choices, Mapping):
        pairs = [(str(letter).strip(), str(text)) for letter, text in choices.items()]
    else:
        pairs = []
        for option in choices:
            match = _OPTION_LINE_RE.match(option)
            if match is None:
                raise ValueError(f"option {option!r} is not of the form 'A. text'")
            pairs.append((match.group(1), match.group(2)))
    return {letter: text for letter, text in pairs if text.strip()}


def _normalise(text: str) -> str:
    """Lower case, superscript digits as ``^d`` (``n²`` → ``n^2``), runs of whitespace as one space; enclosing
    quotes, backticks and ``*`` and trailing ``.,;:!`` removed."""
    text = " ".join(text.translate(_SUPERSCRIPTS).lower().split())
    return text.strip(_EDGE_CHARS).rstrip(_TRAILING_PUNCTUATION).strip(_EDGE_CHARS)


def _clean_span(text: str) -> str:
    text = _TAG_RE.sub(" ", text).strip(_EDGE_CHARS + ":")
    text = _ANSWER_PREFIX_RE.sub("", text).strip(_EDGE_CHARS)
    return text.rstrip(_TRAILING_PUNCTUATION).strip(_EDGE_CHARS)


def final_answer_span(prediction: str) -> str | None:
    """The part of a response that states its final answer, or ``None`` when there is none to check.

    In order: the first line of text after the last "the final answer is" (MMVU's CoT prompts end with
    "Therefore, the final answer is: …"); else the first ``<answer>…</answer>`` block; else the whole response if it
    has at most :data:`SHORT_RESPONSE_WORDS` words (a direct answer). The span is cleaned of answer/think tags,
    enclosing quotes and ``*``, a leading ``:`` or ``Answer:`` and trailing punctuation; an empty span is ``None``.
    """
    markers = list(_MARKER_RE.finditer(prediction))
    if markers:
        tail = prediction[markers[-1].end() :].lstrip(_EDGE_CHARS + ":")
        span: str | None = tail.split("\n", 1)[0]
    else:
        span = find_answer(prediction)
        if span is None and len(prediction.split()) <= SHORT_RESPONSE_WORDS:
            span = prediction
    if span is None:
        return None
    return _clean_span(span) or None


def _contains(haystack: str, needle: str) -> bool:
    """``needle`` occurs in ``haystack`` not glued to a word character on either side."""
    return bool(needle) and re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack) is not None


def _negations(text: str) -> set[str]:
    return set(_NEGATION_RE.findall(text))


def _words(text: str) -> list[str]:
    return [word for word in (w.strip(string.punctuation) for w in text.split()) if word]


def _mc_rule(span: str, answer: str, choices: dict[str, str]) -> str | None:
    letters = [m for m in _STANDALONE_CAPITAL_RE.findall(span) if m in choices]
    if any(letter != answer for letter in letters):
        return None
    reference = _normalise(choices.get(answer, ""))
    norm_span = _normalise(span)
    if _negations(norm_span) - _negations(reference):
        return None
    if letters:
        return "letter"
    if not _contains(norm_span, reference):
        return None
    others = (_normalise(text) for letter, text in choices.items() if letter != answer)
    if any(_contains(norm_span, other) and not _contains(reference, other) for other in others):
        return None
    return "choice-text"


def _open_rule(span: str, answer: str) -> str | None:
    norm_span, reference = _normalise(span), _normalise(answer)
    if not reference:
        return None
    if norm_span == reference:
        return "exact"
    if _negations(norm_span) - _negations(reference):
        return None
    if _BARE_NUMBER_RE.fullmatch(reference.replace(",", "")):
        numbers = _NUMBER_RE.findall(_THOUSANDS_RE.sub("", norm_span))
        if len(numbers) == 1 and abs(float(numbers[0]) - float(reference.replace(",", ""))) < 0.01:
            return "number"
        return None
    if _contains(norm_span, reference):
        return "answer-in-response"
    span_words, reference_words = _words(norm_span), _words(reference)
    if _contains(reference, norm_span) and 2 * len(span_words) > len(reference_words):
        return "response-in-answer"
    content = [word for word in reference_words if len(word) > 2]
    if 2 <= len(reference_words) <= 5 and content and set(content) <= set(span_words):
        return "word-set"
    span_o, reference_o = _BIG_O_RE.search(norm_span), _BIG_O_RE.search(reference)
    if span_o and reference_o and "".join(span_o.group(1).split()) == "".join(reference_o.group(1).split()):
        return "big-o"
    return None


def matching_rule(question_type: str, prediction_text: str, answer: str, choices: Choices) -> str | None:
    """The name of the first rule that marks the response correct, or ``None`` when no rule decides (then the
    judge is asked). This is lmms-eval's pre-check made conservative: it never says "wrong", since the rules only
    recognise agreement and a response they miss may still be right in the judge's reading (the official protocol).

    Rules look only at :func:`final_answer_span` (a long response with no "the final answer is" and no ``<answer>``
    block is left to the judge), compared after :func:`_normalise` (lower case, ``²`` → ``^2``, spaces collapsed,
    enclosing quotes and trailing punctuation dropped). Apart from an open-ended exact match, a span with a
    negation word (not, no, never, none, neither, nor, cannot, …n't) absent from the reference is left to the judge.

    Multiple choice (``answer`` is the letter): the span may name no option letter other than ``answer``
    (standalone capitals that are choice keys, e.g. ``B`` in "B. text" or "(B)"; lower case is not read); then
    *letter*: it names ``answer``; or *choice-text*: it contains the answer's choice text as whole words and no
    other choice's text (other than one inside the answer's text).

    Open-ended: *exact*: equal; *number*: the answer is a bare number (then only *exact* and this rule apply) and
    the span holds exactly one number, less than 0.01 from it; *answer-in-response*: the answer occurs in the span
    as whole words; *response-in-answer*: the span occurs in the answer as whole words and has more than half its
    words; *word-set*: a 2–5-word answer whose words longer than two letters (at least one) all appear in the span;
    *big-o*: the first ``O(…)`` of span and answer agree ignoring spaces (``O(n²)`` ≈ ``O(n^2)``).

    Raises ValueError for an unknown question type or a malformed option string.
    """
    kind = _question_kind(question_type)
    span = final_answer_span(prediction_text)
    if span is None:
        return None
    if kind == "mc":
        return _mc_rule(span, answer.strip(), choice_map(choices))
    return _open_rule(span, answer)


# ---------------------------------------------------------------------------------------------------------------
# LLM judge
# ---------------------------------------------------------------------------------------------------------------

_INSTRUCTION = (
    "Evaluate whether the model's final answer is correct by comparing it to the ground-truth answer provided for "
    "the given question.\n\nYou should first extract the final answer from the model's response, and then compare "
    "the extracted answer with the ground-truth answer to determine its accuracy.\n"
)
MULTIPLE_CHOICE_INSTRUCTION = (
    _INSTRUCTION
    + "Output your response in the following structured format:\n"
    + "{\n"
    + '    "extracted_answer": // str value "A" "B" "C" "D" "E", should be a single character\n'
    + '    "correct": // boolean value, True if the answer is correct, False otherwise\n'
    + "}\n"
)
"""System message for multiple-choice items, worded as in MMVU's ``utils/eval_utils.py``."""

OPEN_ENDED_INSTRUCTION = (
    _INSTRUCTION
    + "The final answer generated by the model does not need to match the ground-truth answer word-for-word. "
    + "However, it should only be considered correct if it demonstrates the exact same technique or concept "
    + "explicitly and unambiguously equivalent to the ground-truth answer.\n"
    + "Output your response in the following structured format:\n"
    + "{\n"
    + '    "extracted_answer": // str value, the short final answer extracted from the model\'s response, '
    + "do not hallucinate one that is not present in the response\n"
    + '    "correct": // boolean value, True if the answer is correct, False otherwise\n'
    + "}\n"
)
"""System message for open-ended items, worded as in MMVU's ``utils/eval_utils.py``."""

_VERDICT_SCHEMA: dict[str, Any] = {
    "name": "EvaluationOutput",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"extracted_answer": {"type": "string"}, "correct": {"type": "boolean"}},
        "required": ["extracted_answer", "correct"],
        "additionalProperties": False,
    },
}
_RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
_FENCE_RE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)
_DEFAULT_BASE_URL = "https://api.openai.com/v1"
_DEFAULT_MODEL = "gpt-4o"


class JudgeError(RuntimeError):
    """The judge gave no usable verdict (HTTP failure after retries, or a malformed reply); one-line message."""


@dataclass(frozen=True)
class JudgeVerdict:
    """The judge's structured output and the raw message content it was parsed from."""

    extracted_answer: str
    correct: bool
    raw: str


def judge_messages(
    question: str, choices: Choices, answer: str, response: str, question_type: str
) -> list[dict[str, str]]:
    """System + user messages of the official judge request, worded as MMVU's evaluation words them.

    User message: ``"Question: <q>\\n\\nOptions:\\nA: <text>\\n…"`` (multiple choice) or ``"Question: <q>"``
    (open-ended), then ``"\\n\\nGround Truth Answer: <answer>\\n\\nModel Response to the Question: <response>"``.
    """
    kind = _question_kind(question_type)
    context = f"Question: {question}"
    if kind == "mc":
        options = "\n".join(f"{letter}: {text}" for letter, text in choice_map(choices).items())
        context += f"\n\nOptions:\n{options}"
    user = f"{context}\n\nGround Truth Answer: {answer}\n\nModel Response to the Question: {response}"
    system = MULTIPLE_CHOICE_INSTRUCTION if kind == "mc" else OPEN_ENDED_INSTRUCTION
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _first_env(environ: Mapping[str, str], *names: str) -> str | None:
    return next((environ[name] for name in names if environ.get(name)), None)


@dataclass(frozen=True)
class OpenAIJudge:
    """Chat-completions judge over HTTP (``POST {base_url}/chat/completions``), standard library only.

    ``base_url`` includes the API version (``https://api.openai.com/v1``, or e.g. ``http://host:8000/v1`` for a
    vLLM server). ``api_key`` is sent as ``Authorization: Bearer …`` when set. Connection errors, timeouts and
    HTTP 408/409/429/5xx are retried up to ``max_retries`` times, sleeping ``backoff · 2**k`` seconds before retry
    k+1; other HTTP errors fail at once.

    ``response_format``: ``"json_schema"`` (default) requests strict structured output with the official
    ``EvaluationOutput`` schema, as MMVU does; ``"json_object"`` requests JSON mode for servers without schema
    support. OpenAI rejects JSON mode unless a message contains the word "JSON", which the official instructions
    do not, so use ``"json_object"`` only with servers that do not enforce that.
    """

    base_url: str = _DEFAULT_BASE_URL
    model: str = _DEFAULT_MODEL
    api_key: str | None = None
    timeout: float = 60.0
    max_retries: int = 3
    backoff: float = 1.0
    max_tokens: int = 128
    response_format: ResponseFormat = "json_schema"

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.timeout <= 0 or self.backoff < 0:
            raise ValueError(f"timeout must be > 0 and backoff >= 0, got {self.timeout} and {self.backoff}")
        if self.response_format not in ("json_schema", "json_object"):
            raise ValueError(f"response_format must be 'json_schema' or 'json_object', got {self.response_format!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> OpenAIJudge:
        """A judge configured from the environment (default ``os.environ``); ``overrides`` set other fields.

        ``base_url``: ``VLM_RL_JUDGE_BASE_URL``, else ``OPENAI_BASE_URL``, else ``https://api.openai.com/v1``;
        ``model``: ``VLM_RL_JUDGE_MODEL``, else ``gpt-4o`` (the official engine); ``api_key``:
        ``VLM_RL_JUDGE_API_KEY``, else ``OPENAI_API_KEY``, else none. Empty variables count as unset.
        """
        env = os.environ if environ is None else environ
        return cls(
            base_url=_first_env(env, "VLM_RL_JUDGE_BASE_URL", "OPENAI_BASE_URL") or _DEFAULT_BASE_URL,
            model=_first_env(env, "VLM_RL_JUDGE_MODEL") or _DEFAULT_MODEL,
            api_key=_first_env(env, "VLM_RL_JUDGE_API_KEY", "OPENAI_API_KEY"),
            **overrides,
        )

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def judge(self, question: str, choices: Choices, answer: str, response: str, question_type: str) -> JudgeVerdict:
        """Ask the judge whether ``response`` answers ``question`` with ``answer`` (messages: :func:`judge_messages`;
        ``temperature`` 0, ``max_tokens`` 128 by default).

        Raises JudgeError when the request still fails after the retries, or when the reply is not a chat
        completion whose message content is a JSON object with a string ``extracted_answer`` and a boolean
        ``correct`` (a malformed reply is not retried). Callers count a JudgeError as wrong and record its message,
        as the official evaluation counts a failed judgement as incorrect.
        """
        body: dict[str, Any] = {
            "model": self.model,
            "messages": judge_messages(question, choices, answer, response, question_type),
            "max_tokens": self.max_tokens,
            "temperature": 0,
            "response_format": (
                {"type": "json_schema", "json_schema": _VERDICT_SCHEMA}
                if self.response_format == "json_schema"
                else {"type": "json_object"}
            ),
        }
        return _parse_verdict(self._post(body))

    def _post(self, body: dict[str, Any]) -> str:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        payload = json.dumps(body).encode("utf-8")
        attempts = self.max_retries + 1
        failure = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                    return reply.read().decode("utf-8", errors="replace")
            except urllib.error.HTTPError as err:
                failure = f"HTTP {err.code}: {_one_line(err.read().decode('utf-8', errors='replace'))}"
                if err.code not in _RETRY_STATUSES:
                    raise JudgeError(f"judge request to {self.url} failed with {failure}") from err
            except (OSError, http.client.HTTPException) as err:
                failure = _one_line(f"{type(err).__name__}: {getattr(err, 'reason', err)}")
        raise JudgeError(f"judge request to {self.url} failed after {attempts} attempt(s); last error {failure}")


def _parse_verdict(body: str) -> JudgeVerdict:
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise JudgeError(f"judge reply is not a chat completion: {_one_line(body)}") from err
    if not isinstance(content, str):
        raise JudgeError(f"judge reply has no text content: {_one_line(body)}")
    fenced = _FENCE_RE.match(content.strip())
    try:
        verdict = json.loads(fenced.group(1) if fenced else content)
    except ValueError as err:
        raise JudgeError(f"judge content is not JSON: {_one_line(content)}") from err
    if not (
        isinstance(verdict, dict)
        and isinstance(verdict.get("extracted_answer"), str)
        and isinstance(verdict.get("correct"), bool)
    ):
        raise JudgeError(
            f'judge content lacks a string "extracted_answer" and a boolean "correct": {_one_line(content)}'
        )
    return JudgeVerdict(extracted_answer=verdict["extracted_answer"], correct=verdict["correct"], raw=content)


def score_official(
    question: str, choices: Choices, answer: str, response: str, question_type: str, judge: OpenAIJudge
) -> tuple[bool, Method, str]:
    """MMVU official-mode score of one response: :func:`matching_rule` first, then ``judge``.

    Returns ``(correct, method, detail)``: ``(True, "rule", <rule name>)`` when a rule decides;
    ``(verdict.correct, "judge", <extracted answer>)`` from the judge; ``(False, "judge_error", <message>)`` when
    the judge raised JudgeError (counted as wrong, as in the official evaluation).
    """
    rule = matching_rule(question_type, response, answer, choices)
    if rule is not None:
        return True, "rule", rule
    try:
        verdict = judge.judge(question, choices, answer, response, question_type)
    except JudgeError as err:
        return False, "judge_error", str(err)
    return verdict.correct, "judge", verdict.extracted_answer
