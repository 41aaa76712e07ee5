"""VL-Rethinker Forced Rethinking helpers (arXiv 2504.08837).

The official code's rules are summarised in docs/algorithms.md ("VL-Rethinker: notes on the official code").
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from vlm_rl.config import ConfigError, RethinkConfig, load_config
from vlm_rl.rollout.rethinking import (
    T0,
    T1,
    T2,
    T3,
    TRIGGERS,
    choose_trigger,
    is_eligible,
    keep_continuation,
    maybe_truncate,
    rethink_word_count,
    truncate_for_rethinking,
)

DRAWS = 100_000
CONFIG = RethinkConfig()
NO_SKIP = RethinkConfig(skip_probability=0.0)


class ScriptedRng(random.Random):
    """A Random whose ``random()`` returns the given values in order and fails if asked for more."""

    def __init__(self, *values: float) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


def test_trigger_constants_and_defaults() -> None:
    assert TRIGGERS == (
        "\n\nWait",
        "\n\nWait, does it seem right?",
        "\n\nWait, let's double check",
        "\n\nWait, there might be a mistake",
    )
    assert (CONFIG.skip_probability, CONFIG.group_accuracy_threshold, CONFIG.truncate_probability) == (0.35, 0.7, 0.5)
    assert (CONFIG.max_kept_per_query, CONFIG.min_new_tokens, CONFIG.max_new_tokens) == (2, 30, 1024)
    assert (CONFIG.max_rethink_words, CONFIG.max_first_pass_tokens, CONFIG.temperature) == (4, 1024, 0.9)


@pytest.mark.parametrize("field", ["skip_probability", "group_accuracy_threshold", "truncate_probability"])
def test_config_rejects_probabilities_outside_unit_interval(field: str) -> None:
    with pytest.raises(ConfigError, match=f"algo.rethink.{field}"):
        load_config(None, [f"algo.rethink.{field}=1.5"])


def test_config_rejects_empty_new_token_window() -> None:
    with pytest.raises(ConfigError, match="min_new_tokens"):
        load_config(None, ["algo.rethink.min_new_tokens=1024", "algo.rethink.max_new_tokens=1024"])


# --- trigger choice and its frequencies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("correct", "expected"),
    [(True, (0.2, 0.3, 0.5, 0.0)), (False, (0.2, 0.3, 0.0, 0.5))],
)
def test_trigger_frequencies(correct: bool, expected: tuple[float, ...]) -> None:
    rng = random.Random(1234)
    counts = Counter(choose_trigger(correct, rng) for _ in range(DRAWS))
    for trigger, probability in zip(TRIGGERS, expected, strict=True):
        assert counts[trigger] / DRAWS == pytest.approx(probability, abs=0.01)
    assert sum(counts.values()) == DRAWS


@pytest.mark.parametrize(
    ("draws", "correct", "expected"),
    [
        ((0.49, 0.39), True, T0),
        ((0.49, 0.4), False, T1),
        ((0.5,), True, T2),
        ((0.5,), False, T3),
    ],
)
def test_trigger_rng_stream(draws: tuple[float, ...], correct: bool, expected: str) -> None:
    rng = ScriptedRng(*draws)
    assert choose_trigger(correct, rng) == expected
    assert rng.values == []


# --- eligibility -----------------------------------------------------------------------------------------------


def _eligible(rng: random.Random, config: RethinkConfig = NO_SKIP, **overrides: object) -> bool:
    kwargs: dict[str, object] = {"ended_with_eos": True, "length": 500, "correct": True, "group_accuracy": 0.5}
    kwargs.update(overrides)
    return is_eligible(config=config, rng=rng, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "overrides",
    [
        {"ended_with_eos": False},
        {"length": 1025},
        {"correct": False, "group_accuracy": 0.75},
    ],
)
def test_ineligible_rollouts_consume_no_randomness(overrides: dict[str, object]) -> None:
    rng = ScriptedRng()
    assert not _eligible(rng, CONFIG, **overrides)


def test_length_limit_is_inclusive_and_configurable() -> None:
    assert _eligible(random.Random(0), length=1024)
    assert not _eligible(
        random.Random(0), length=1024, config=RethinkConfig(skip_probability=0.0, max_first_pass_tokens=1000)
    )


def test_group_accuracy_threshold_is_strict() -> None:
    assert _eligible(random.Random(0), correct=False, group_accuracy=0.7)
    assert not _eligible(random.Random(0), correct=False, group_accuracy=0.75)
    assert _eligible(random.Random(0), correct=True, group_accuracy=1.0)


def test_skip_draw_is_last_and_single() -> None:
    assert not _eligible(ScriptedRng(0.34), CONFIG)
    assert _eligible(ScriptedRng(0.35), CONFIG)


def test_skip_frequency() -> None:
    rng = random.Random(7)
    skipped = sum(not _eligible(rng, CONFIG) for _ in range(DRAWS))
    assert skipped / DRAWS == pytest.approx(0.35, abs=0.01)


# --- truncation ------------------------------------------------------------------------------------------------


def test_worked_example_in_boxed_mode() -> None:
    text = "Step 1…\n\nStep 2…\n\nSo the answer is \\boxed{3}."
    assert truncate_for_rethinking(text, boxed=True) == "Step 1…\n\nStep 2…"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # cut before the last Wait leaves a trailing "\n\n", which is then the last one
        ("A.\n\nB.\n\nWait, C.\n\nD. \\boxed{1}", "A.\n\nB."),
        # first (not last) "answer", case-insensitive
        ("x\n\ny ANSWER one\n\nz answer two \\boxed{2}", "x"),
        ("plain text without markers  ", "plain text without markers"),
    ],
)
def test_boxed_mode(text: str, expected: str) -> None:
    assert truncate_for_rethinking(text, boxed=True) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>two red, one blue\n\nso three</think><answer>3</answer>", "<think>two red, one blue"),
        (
            "<think>Count the cubes.\n\nThere are 3.\n\nWait, one rolled off, so 2.</think><answer>2</answer>",
            "<think>Count the cubes.\n\nThere are 3.",
        ),
        # the last Wait is the cut point, an earlier one survives
        (
            "<think>Wait, look again.\n\nThree cubes.\n\nWait, two.</think>\n<answer>2</answer>",
            "<think>Wait, look again.\n\nThree cubes.",
        ),
        # a prose "answer" (any case) is cut at its first occurrence
        ("<think>Cubes: 3.\n\nSo the Answer is 3.</think><answer>3</answer>", "<think>Cubes: 3."),
        # answer tags are markup, not the word: only the last <answer> and the last "\n\n" cut here
        ("<think>a\n\nb</think><answer>1</answer> more <answer>2</answer>", "<think>a"),
        # lower-case "wait" is not a cut point ("Wait" is case-sensitive, as in the official rule)
        ("<think>wait for it\n\nthree</think><answer>3</answer>", "<think>wait for it"),
        # no "\n\n": only the answer cut applies
        ("<think>three cubes</think> <answer>3</answer>", "<think>three cubes</think>"),
        ("  no markers at all \n", "no markers at all"),
    ],
)
def test_answer_mode(text: str, expected: str) -> None:
    assert truncate_for_rethinking(text) == expected


def test_answer_mode_differs_from_boxed_mode_on_tags() -> None:
    text = "<think>a\n\nb</think><answer>1</answer>\n\nso <answer>2</answer>"
    assert truncate_for_rethinking(text) == "<think>a\n\nb</think><answer>1</answer>"
    # the official rule cuts inside the first tag ("<" + "answer>"), then before the "\n\n" in the thought
    assert truncate_for_rethinking(text, boxed=True) == "<think>a"


def test_maybe_truncate_single_draw() -> None:
    text = "<think>a\n\nb</think><answer>1</answer>"
    assert maybe_truncate(text, CONFIG, ScriptedRng(0.49)) == "<think>a"
    assert maybe_truncate(text, CONFIG, ScriptedRng(0.5)) == text


def test_maybe_truncate_frequency() -> None:
    rng = random.Random(3)
    text = "<think>a\n\nb</think><answer>1</answer>"
    truncated = sum(maybe_truncate(text, CONFIG, rng) != text for _ in range(DRAWS))
    assert truncated / DRAWS == pytest.approx(0.5, abs=0.01)


# --- rethinking words ("wait,", "wait a", "alternatively") and the keep rule ------------------------------------


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Wait, is it 3?", 1),
        ("wait a moment", 1),
        ("waiting for the ball", 0),
        ("Wait", 0),
        ("Alternatively, ALTERNATIVELY", 2),
        ("WAIT, hmm. Wait a sec, alternatively 4.", 3),
        ("", 0),
    ],
)
def test_rethink_word_count(text: str, count: int) -> None:
    assert rethink_word_count(text) == count


def _keep(**overrides: object) -> bool:
    kwargs: dict[str, object] = {
        "new_tokens": 200,
        "correct": True,
        "kept_for_query": 0,
        "continuation_text": ", the count holds: 3.</think><answer>3</answer>",
    }
    kwargs.update(overrides)
    return keep_continuation(config=CONFIG, **kwargs)  # type: ignore[arg-type]


def test_keep_default_case() -> None:
    assert _keep()


@pytest.mark.parametrize(("new_tokens", "kept"), [(30, False), (31, True), (1023, True), (1024, False)])
def test_keep_new_token_bounds_are_exclusive(new_tokens: int, kept: bool) -> None:
    assert _keep(new_tokens=new_tokens) is kept


def test_keep_requires_correct() -> None:
    assert not _keep(correct=False)


@pytest.mark.parametrize(("kept_for_query", "kept"), [(1, True), (2, False), (3, False)])
def test_keep_per_query_cap(kept_for_query: int, kept: bool) -> None:
    assert _keep(kept_for_query=kept_for_query) is kept


def test_keep_rethink_word_limit() -> None:
    three = "Wait, no. Wait a bit. Alternatively 3.</think><answer>3</answer>"
    four = "Wait, no. Wait a bit. Alternatively 3. Wait, yes.</think><answer>3</answer>"
    assert _keep(continuation_text=three)
    assert not _keep(continuation_text=four)
