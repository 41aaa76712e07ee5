"""Unit tests for vlm_rl.eval.judge: MMVU's rule-based pre-check and the LLM judge against a real local HTTP server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from vlm_rl.eval.judge import (
    MULTIPLE_CHOICE_INSTRUCTION,
    OPEN_ENDED_INSTRUCTION,
    JudgeError,
    JudgeVerdict,
    OpenAIJudge,
    choice_map,
    final_answer_span,
    matching_rule,
    score_official,
)

CHOICES = {
    "A": "kinetic energy",
    "B": "linear momentum",
    "C": "temperature",
    "D": "angular velocity",
    "E": "none of the above",
}
OPTIONS = tuple(f"{letter}. {text}" for letter, text in CHOICES.items())
QUESTION = "Which quantity is conserved during the collision shown in the video?"
LONG_COT = (
    "Let me think. The carts collide and stick together, so some kinetic energy is lost as heat. "
    "Option B mentions linear momentum, which is conserved when no external force acts on the system."
)

# ---------------------------------------------------------------------------------------------------------------
# Rule table
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prediction", "rule"),
    [
        (LONG_COT + " Therefore, the final answer is: B", "letter"),
        (LONG_COT + "\nTherefore, the final answer is: **B**.\n\nThat is my answer, not C.", "letter"),
        ("Therefore, the final answer is: 'B. linear momentum'", "letter"),
        ("B", "letter"),
        ("(B)", "letter"),
        ("<think>momentum is conserved</think><answer>B</answer>", "letter"),
        ("Linear momentum.", "choice-text"),
        ("The conserved quantity is linear momentum", "choice-text"),
        ("Therefore, the final answer is: linear momentum", "choice-text"),
    ],
)
def test_multiple_choice_rules_mark_correct(prediction: str, rule: str) -> None:
    assert matching_rule("multiple-choice", prediction, "B", CHOICES) == rule
    assert matching_rule("multiple choice", prediction, "B", OPTIONS) == rule


@pytest.mark.parametrize(
    "prediction",
    [
        LONG_COT,  # long, no final-answer marker and no <answer> block: left to the judge
        LONG_COT + " Therefore, the final answer is: C",
        "Therefore, the final answer is: B or C",
        "Therefore, the final answer is: C. linear momentum",  # letter and text disagree
        "Therefore, the final answer is: not B",
        "Therefore, the final answer is: b",  # lower case is not read as a letter
        "kinetic energy",
        "linear momentum or kinetic energy",
        "",
    ],
)
def test_multiple_choice_undecided_goes_to_judge(prediction: str) -> None:
    assert matching_rule("multiple-choice", prediction, "B", CHOICES) is None


def test_choice_text_inside_another_choice_does_not_block() -> None:
    choices = {"A": "momentum", "B": "linear momentum", "C": "heat"}
    assert matching_rule("multiple-choice", "linear momentum", "B", choices) == "choice-text"
    # The reverse: the answer's text only occurs inside another choice's text.
    assert matching_rule("multiple-choice", "linear momentum", "A", choices) is None


def test_negation_in_the_reference_is_allowed() -> None:
    assert matching_rule("multiple-choice", "Therefore, the final answer is: none of the above", "E", CHOICES) == (
        "choice-text"
    )


@pytest.mark.parametrize(
    ("prediction", "answer", "rule"),
    [
        ("Match cut", "Match cut", "exact"),
        ("  match   CUT. ", "Match cut", "exact"),
        ("Reasoning...\nTherefore, the final answer is: 'Answer: Match cut'.", "Match cut", "exact"),
        ("O(n²)", "O(n^2)", "exact"),
        ("The technique used is a match cut", "Match cut", "answer-in-response"),
        ("The algorithm is depth-first search (DFS).", "Depth-First Search (DFS)", "answer-in-response"),
        ("Therefore, the final answer is: depth-first search", "Depth-First Search (DFS)", "response-in-answer"),
        ("Therefore, the final answer is: 3.141", "3.14", "number"),
        ("Therefore, the final answer is: about 1,200 N", "1200", "number"),
        ("<answer>-2.5</answer>", "-2.50", "number"),
        ("transfer of kinetic energy", "Kinetic energy transfer", "word-set"),
        ("Therefore, the final answer is: O(n ^ 2) time", "O(n^2)", "big-o"),
        ("Therefore, the final answer is: o( n² )", "O(n^2) complexity", "big-o"),
    ],
)
def test_open_ended_rules_mark_correct(prediction: str, answer: str, rule: str) -> None:
    assert matching_rule("open-ended", prediction, answer, {k: "" for k in "ABCDE"}) == rule
    assert matching_rule("free-form", prediction, answer, ()) == rule


@pytest.mark.parametrize(
    ("prediction", "answer"),
    [
        ("cut", "Match cut"),  # too short a part of the answer
        ("jump cut", "Match cut"),
        ("This is not a match cut", "Match cut"),
        ("Therefore, the final answer is: 3.2", "3.14"),
        ("Therefore, the final answer is: between 3 and 4", "3"),
        ("Therefore, the final answer is: 3.5", "3"),
        ("H2O", "2"),
        ("energy", "Kinetic energy transfer"),
        ("Therefore, the final answer is: O(n log n)", "O(n^2)"),
        (LONG_COT + " It is a match cut, I believe, though maybe a jump cut.", "Match cut"),
    ],
)
def test_open_ended_undecided_goes_to_judge(prediction: str, answer: str) -> None:
    assert matching_rule("open-ended", prediction, answer, {}) is None


def test_final_answer_span_prefers_the_last_marker() -> None:
    text = "I think the final answer is A. Wait. Therefore, the final answer is: 'C'.\nDone."
    assert final_answer_span(text) == "C"
    assert final_answer_span("<answer> B </answer>") == "B"
    assert final_answer_span(LONG_COT) is None
    assert final_answer_span("Therefore, the final answer is: ") is None


def test_unknown_question_type_and_bad_options_raise() -> None:
    with pytest.raises(ValueError, match="unknown question_type 'numerical'"):
        matching_rule("numerical", "3", "3", {})
    with pytest.raises(ValueError, match="not of the form 'A. text'"):
        choice_map(["A) red", "B) blue"])
    assert choice_map(OPTIONS) == CHOICES
    assert choice_map({"A": "", "B": ""}) == {}


# ---------------------------------------------------------------------------------------------------------------
# Judge against a real local HTTP server
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeOpenAI:
    """A chat-completions endpoint on 127.0.0.1: answers with the queued (status, body) replies, then the default."""

    base_url: str
    replies: list[tuple[int, str]] = field(default_factory=list)
    default: tuple[int, str] = (500, "no reply queued")
    received: list[Received] = field(default_factory=list)


def completion(content: str) -> str:
    return json.dumps(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
    )


def verdict_reply(extracted: str, correct: bool) -> tuple[int, str]:
    return 200, completion(json.dumps({"extracted_answer": extracted, "correct": correct}))


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    state = FakeOpenAI(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.received.append(Received(self.path, dict(self.headers), json.loads(self.rfile.read(length))))
            status, body = state.replies.pop(0) if state.replies else state.default
            if self.path != "/v1/chat/completions":
                status, body = 404, "not found"
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def make_judge(server: FakeOpenAI, **kwargs: Any) -> OpenAIJudge:
    options: dict[str, Any] = {"base_url": server.base_url, "model": "judge-model", "api_key": "sk-test"}
    options.update(timeout=5.0, max_retries=2, backoff=0.0)
    options.update(kwargs)
    return OpenAIJudge(**options)


def test_multiple_choice_request_and_verdict(server: FakeOpenAI) -> None:
    server.replies.append(verdict_reply("B", True))
    response = LONG_COT + " So B."
    verdict = make_judge(server).judge(QUESTION, CHOICES, "B", response, "multiple-choice")

    assert verdict == JudgeVerdict("B", True, '{"extracted_answer": "B", "correct": true}')
    (request,) = server.received
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test"
    assert request.headers["Content-Type"] == "application/json"
    body = request.body
    assert body["model"] == "judge-model"
    assert body["max_tokens"] == 128
    assert body["temperature"] == 0
    assert body["response_format"]["type"] == "json_schema"
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["extracted_answer", "correct"]
    assert schema["properties"] == {"extracted_answer": {"type": "string"}, "correct": {"type": "boolean"}}
    system, user = body["messages"]
    assert system == {"role": "system", "content": MULTIPLE_CHOICE_INSTRUCTION}
    assert user["role"] == "user"
    assert user["content"] == (
        f"Question: {QUESTION}\n\nOptions:\nA: kinetic energy\nB: linear momentum\nC: temperature\n"
        "D: angular velocity\nE: none of the above\n\n"
        f"Ground Truth Answer: B\n\nModel Response to the Question: {response}"
    )
    assert MULTIPLE_CHOICE_INSTRUCTION.startswith("Evaluate whether the model's final answer is correct")
    assert '"extracted_answer": // str value "A" "B" "C" "D" "E", should be a single character' in (
        MULTIPLE_CHOICE_INSTRUCTION
    )


def test_open_ended_request_with_sample_options_and_json_object(server: FakeOpenAI) -> None:
    server.replies.append(verdict_reply("jump cut", False))
    judge = make_judge(server, api_key=None, response_format="json_object")
    verdict = judge.judge("Which cinematic technique is used?", (), "Match cut", "It is a jump cut.", "free-form")

    assert (verdict.extracted_answer, verdict.correct) == ("jump cut", False)
    (request,) = server.received
    assert "Authorization" not in request.headers
    assert request.body["response_format"] == {"type": "json_object"}
    system, user = request.body["messages"]
    assert system["content"] == OPEN_ENDED_INSTRUCTION
    assert "exact same technique or concept explicitly and unambiguously equivalent" in OPEN_ENDED_INSTRUCTION
    assert user["content"] == (
        "Question: Which cinematic technique is used?\n\nGround Truth Answer: Match cut\n\n"
        "Model Response to the Question: It is a jump cut."
    )


def test_retries_after_server_error_then_succeeds(server: FakeOpenAI) -> None:
    server.replies += [(500, "overloaded"), (429, "slow down"), verdict_reply("C", False)]
    verdict = make_judge(server).judge(QUESTION, OPTIONS, "B", "C", "multiple choice")
    assert verdict.correct is False
    assert len(server.received) == 3
    assert server.received[0].body == server.received[2].body


def test_repeated_failures_raise_one_line_error(server: FakeOpenAI) -> None:
    server.default = (503, "upstream\nunavailable")
    with pytest.raises(JudgeError) as info:
        make_judge(server, max_retries=2).judge(QUESTION, CHOICES, "B", "B", "multiple-choice")
    assert len(server.received) == 3
    message = str(info.value)
    assert "\n" not in message
    assert "after 3 attempt(s)" in message and "HTTP 503: upstream unavailable" in message


def test_client_error_is_not_retried(server: FakeOpenAI) -> None:
    server.replies.append((401, '{"error": {"message": "bad key"}}'))
    with pytest.raises(JudgeError, match="failed with HTTP 401"):
        make_judge(server).judge(QUESTION, CHOICES, "B", "B", "multiple-choice")
    assert len(server.received) == 1


def test_wrong_path_reports_404(server: FakeOpenAI) -> None:
    judge = make_judge(server, base_url=server.base_url.removesuffix("/v1"))
    with pytest.raises(JudgeError, match="HTTP 404"):
        judge.judge(QUESTION, CHOICES, "B", "B", "multiple-choice")
    assert server.received[0].path == "/chat/completions"


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (completion("The answer is correct."), "judge content is not JSON"),
        (completion('{"extracted_answer": "B", "correct": "yes"}'), 'lacks a string "extracted_answer"'),
        (completion('{"correct": true}'), 'lacks a string "extracted_answer"'),
        (completion("[1, 2]"), 'lacks a string "extracted_answer"'),
        ('{"object": "error"}', "not a chat completion"),
        ("<html>gateway</html>", "not a chat completion"),
    ],
    ids=["prose", "string-correct", "missing-answer", "json-list", "not-completion", "html"],
)
def test_malformed_reply_raises(server: FakeOpenAI, reply: str, error: str) -> None:
    server.replies.append((200, reply))
    with pytest.raises(JudgeError, match=error):
        make_judge(server).judge(QUESTION, CHOICES, "B", "B", "multiple-choice")
    assert len(server.received) == 1  # a malformed reply is not retried


def test_fenced_json_content_is_accepted(server: FakeOpenAI) -> None:
    server.replies.append((200, completion('```json\n{"extracted_answer": "B", "correct": true}\n```')))
    assert make_judge(server).judge(QUESTION, CHOICES, "B", "B", "multiple-choice").correct is True


def test_connection_refused_raises_after_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    judge = OpenAIJudge(base_url=f"http://127.0.0.1:{port}/v1", timeout=2.0, max_retries=1, backoff=0.0)
    with pytest.raises(JudgeError, match="after 2 attempt"):
        judge.judge(QUESTION, CHOICES, "B", "B", "multiple-choice")


def test_score_official_rule_then_judge(server: FakeOpenAI) -> None:
    judge = make_judge(server)
    decided = score_official(QUESTION, CHOICES, "B", "Therefore, the final answer is: B", "multiple-choice", judge)
    assert decided == (True, "rule", "letter")
    assert server.received == []

    server.replies.append(verdict_reply("C", False))
    judged = score_official(QUESTION, CHOICES, "B", "Therefore, the final answer is: C", "multiple-choice", judge)
    assert judged == (False, "judge", "C")

    server.replies.append(verdict_reply("match cut", True))
    judged = score_official("Which technique?", {}, "Match cut", LONG_COT, "open-ended", judge)
    assert judged == (True, "judge", "match cut")

    server.default = (500, "down")
    correct, method, detail = score_official(QUESTION, CHOICES, "B", LONG_COT, "multiple-choice", judge)
    assert (correct, method) == (False, "judge_error")
    assert "HTTP 500" in detail


def test_from_env_reads_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VLM_RL_JUDGE_BASE_URL", "VLM_RL_JUDGE_MODEL", "VLM_RL_JUDGE_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    default = OpenAIJudge.from_env()
    assert (default.base_url, default.model, default.api_key) == ("https://api.openai.com/v1", "gpt-4o", None)
    assert default.url == "https://api.openai.com/v1/chat/completions"

    monkeypatch.setenv("OPENAI_BASE_URL", "http://fallback:1/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    fallback = OpenAIJudge.from_env()
    assert (fallback.base_url, fallback.api_key) == ("http://fallback:1/v1", "sk-openai")

    monkeypatch.setenv("VLM_RL_JUDGE_BASE_URL", "http://127.0.0.1:8000/v1/")
    monkeypatch.setenv("VLM_RL_JUDGE_MODEL", "Qwen2.5-72B-Instruct")
    monkeypatch.setenv("VLM_RL_JUDGE_API_KEY", "sk-judge")
    judge = OpenAIJudge.from_env(timeout=7.5, max_retries=5)
    assert (judge.base_url, judge.model, judge.api_key) == (
        "http://127.0.0.1:8000/v1/",
        "Qwen2.5-72B-Instruct",
        "sk-judge",
    )
    assert (judge.timeout, judge.max_retries) == (7.5, 5)
    assert judge.url == "http://127.0.0.1:8000/v1/chat/completions"

    explicit = OpenAIJudge.from_env({"VLM_RL_JUDGE_MODEL": "m", "VLM_RL_JUDGE_API_KEY": ""})
    assert (explicit.model, explicit.api_key) == ("m", None)


def test_invalid_settings_raise() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        OpenAIJudge(max_retries=-1)
    with pytest.raises(ValueError, match="response_format"):
        OpenAIJudge(response_format="text")  # type: ignore[arg-type]
