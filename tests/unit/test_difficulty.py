"""DeepVideo-R1 difficulty-aware augmentation (arXiv 2506.07464; docs/algorithms.md): Δ, levels, hints, noise."""

from __future__ import annotations

import json

import pytest
import torch

from data_pipelines.difficulty import (
    ANSWER_REVEAL_TEMPLATE,
    HINT_TEMPLATE,
    DifficultyTracker,
    add_frame_noise,
    answer_revealing_question,
    classify,
    guidance_level,
    hint_from_trace,
    hinted_question,
    mentions_answer,
    perturbation_level,
    should_augment,
    split_sentences,
)


def _tracker(means: list[float], window: int = 100) -> DifficultyTracker:
    tracker = DifficultyTracker(window)
    for mean in means:
        tracker.push(mean)
    return tracker


# --- difficulty measure and levels ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rewards", "delta", "kind", "l_guide", "l_perturb", "augment"),
    [
        ([2, 2, 2, 2], -0.8, "easy", 2, 1.8, True),
        ([1, 1, 1, 1], 0.2, "hard", 1, 1.2, True),
        ([0, 0, 0, 0], 1.2, "hard", 2, 2.2, True),
        ([2, 1, 2, 1], -0.3, "easy", 1, 1.3, False),
    ],
)
def test_worked_example_table(
    rewards: list[int], delta: float, kind: str, l_guide: int, l_perturb: float, augment: bool
) -> None:
    """The difficulty table of docs/algorithms.md's worked examples: window mean 1.2, rewards in {0, 1, 2}."""
    tracker = _tracker([0.0, 1.0, 2.0, 2.0, 1.0])  # mean 6 / 5 = 1.2
    group = torch.tensor(rewards, dtype=torch.float64)
    got = tracker.delta(group.mean().item())
    assert got == delta  # exact: delta() rounds away the float noise of 1.2 - 2.0
    assert classify(got) == kind
    assert guidance_level(got) == l_guide
    assert perturbation_level(got) == pytest.approx(l_perturb, abs=1e-12)
    assert should_augment(group.std().item()) is augment


def test_empty_window_gives_none_and_delta_does_not_push() -> None:
    tracker = DifficultyTracker()
    assert tracker.window == 100
    assert len(tracker) == 0
    assert tracker.delta(1.0) is None
    assert len(tracker) == 0
    tracker.push(1.0)
    assert tracker.delta(1.0) == 0.0
    assert classify(0.0) == "none"


def test_window_keeps_the_most_recent_entries() -> None:
    tracker = _tracker([0.0, 0.0, 0.0], window=3)
    assert tracker.delta(0.0) == 0.0
    tracker.push(2.0)  # evicts one 0.0 -> [0, 0, 2]
    assert len(tracker) == 3
    assert tracker.delta(0.0) == pytest.approx(2 / 3)
    tracker.push(2.0)
    tracker.push(2.0)  # -> [2, 2, 2]
    assert len(tracker) == 3
    assert tracker.delta(2.0) == 0.0
    assert tracker.delta(0.5) == 1.5


def test_delta_float_noise_does_not_move_a_half() -> None:
    assert 0.7 - 0.2 == 0.49999999999999994 and 0.8 - 2.3 == -1.4999999999999998  # the float noise removed
    assert guidance_level(0.49999999999999994) == 1 and guidance_level(-1.4999999999999998) == 2
    assert _tracker([0.7]).delta(0.2) == 0.5
    assert guidance_level(_tracker([0.7]).delta(0.2)) == 2
    assert _tracker([0.8]).delta(2.3) == -1.5
    assert guidance_level(_tracker([0.8]).delta(2.3)) == 3


@pytest.mark.parametrize(
    ("delta", "level"),
    [(0.0, 1), (0.49, 1), (0.5, 2), (-0.5, 2), (1.49, 2), (1.5, 3), (-1.5, 3), (2.0, 3), (2.5, 4), (3.5, 5)],
)
def test_guidance_level_rounds_halves_up(delta: float, level: int) -> None:
    assert guidance_level(delta) == level


def test_perturbation_level_and_classify() -> None:
    assert perturbation_level(0.0) == 1.0
    assert perturbation_level(-2.0) == 3.0
    assert classify(1e-9) == "hard"
    assert classify(-1e-9) == "easy"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1.0", None, True])
def test_non_finite_or_non_numeric_deltas_raise(bad: object) -> None:
    for fn in (classify, guidance_level, perturbation_level):
        with pytest.raises(ValueError):
            fn(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        DifficultyTracker().push(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("window", [0, -1, 2.5, True])
def test_bad_window_raises(window: object) -> None:
    with pytest.raises(ValueError):
        DifficultyTracker(window)  # type: ignore[arg-type]


def test_should_augment() -> None:
    assert should_augment(0.0)
    assert not should_augment(1e-6)
    assert should_augment(0.05, threshold=0.1)
    assert should_augment(0.1, threshold=0.1)
    assert not should_augment(0.2, threshold=0.1)
    assert not should_augment(float("nan"))
    with pytest.raises(ValueError):
        should_augment(0.0, threshold=-0.1)


def test_state_dict_round_trip_through_json() -> None:
    tracker = _tracker([0.25, 1.5, 2.0, 0.0], window=3)
    state = json.loads(json.dumps(tracker.state_dict()))
    assert state == {"window": 3, "group_means": [1.5, 2.0, 0.0]}
    restored = DifficultyTracker(3)
    restored.load_state_dict(state)
    assert len(restored) == 3
    assert restored.delta(0.5) == tracker.delta(0.5)
    restored.push(1.0)
    tracker.push(1.0)
    assert restored.state_dict() == tracker.state_dict()


def test_load_state_dict_into_a_smaller_window_keeps_the_newest() -> None:
    smaller = DifficultyTracker(2)
    smaller.load_state_dict(_tracker([0.0, 1.0, 2.0]).state_dict())
    assert smaller.state_dict() == {"window": 2, "group_means": [1.0, 2.0]}


def test_load_state_dict_rejects_bad_states() -> None:
    tracker = DifficultyTracker()
    with pytest.raises(TypeError):
        tracker.load_state_dict({"window": 3})
    with pytest.raises(ValueError):
        tracker.load_state_dict({"window": 3, "group_means": [1.0, None]})


# --- hints ------------------------------------------------------------------------------------------------------

STEPS = [
    "First, the person walks into the laundry room.",
    "Then they pick up the pile of clothes.",
    "Next, they carry the clothes to the bed!",
    "After that they let go of them on the bed.",
]
TRACE = f"<think>{STEPS[0]} {STEPS[1]}\n{STEPS[2]} {STEPS[3]} So the answer is C.</think>\n<answer>C</answer>"


@pytest.mark.parametrize(("level", "kept"), [(1, 1), (2, 2), (3, 3), (4, 4), (10, 4)])
def test_hint_levels_count_sentences_and_drop_the_answer(level: int, kept: int) -> None:
    got = hint_from_trace(TRACE, level, answer="C")
    assert got == " ".join(STEPS[:kept])
    assert "answer" not in got.lower()
    assert not mentions_answer(got, "C")


def test_answer_sentences_are_skipped_without_using_up_the_level() -> None:
    trace = (
        "<think>The ground-truth answer is B, let me justify it. There are three cubes at the start. "
        "One cube rolls off the table. That leaves 2 cubes on the table. Counting again, two remain.</think>"
        "<answer>2</answer>"
    )
    assert hint_from_trace(trace, 1, answer="2") == "There are three cubes at the start."
    assert hint_from_trace(trace, 3, answer="2") == (
        "There are three cubes at the start. One cube rolls off the table."
    )


@pytest.mark.parametrize(
    "leaky",
    [
        "The answer is 7.",
        "So the final answer: 7.",
        "Therefore the correct option is the third one.",
        "I counted 7 birds in total.",
        "There were 7.0 birds.",
        "Seven birds flew away.",
        "Birds: 7, all flying.",
    ],
)
def test_leaky_sentences_are_stripped(leaky: str) -> None:
    trace = f"<think>Birds land on the wire one by one. {leaky} They fly off together.</think><answer>7</answer>"
    assert hint_from_trace(trace, 3, answer="7") == "Birds land on the wire one by one. They fly off together."


def test_numbers_match_whole_numbers_only() -> None:
    assert not mentions_answer("There are 17 birds and 70 wires, 3.7 m or 7.5 m apart.", "7")
    assert not mentions_answer("About 1,300 of them.", "1")
    assert mentions_answer("There are 7 birds.", "7")
    assert mentions_answer("The total is 1,000 people.", "1000")
    assert mentions_answer("A drop of -3 degrees.", "3")
    assert mentions_answer("Three of them.", "3")
    assert mentions_answer("There are 3 of them.", "three")


def test_option_answers_match_letter_and_text() -> None:
    answer = "D. move berries"
    assert mentions_answer("The person will move berries next.", answer)
    assert mentions_answer("Option D fits best.", answer)
    assert mentions_answer("It is (D).", "(D)")
    assert not mentions_answer("The bowl sits on the table and a hand reaches out.", "A")
    assert mentions_answer("A bowl sits on the table.", "A")  # over-inclusive on purpose
    assert mentions_answer("B is wrong but C is right.", "A,C")
    assert mentions_answer("It is C.", "<answer>C</answer>")
    assert not mentions_answer("The door stays shut.", "the man opens the door")
    assert mentions_answer("Then the man\nopens the DOOR.", "the man opens the door")


def test_answer_block_is_never_included() -> None:
    no_think = "The cat jumps onto the sofa. It sleeps there. <answer>sofa</answer> The cat sleeps on the sofa."
    assert hint_from_trace(no_think, 5, answer="a sofa") == "The cat jumps onto the sofa. It sleeps there."
    assert hint_from_trace(no_think, 5, answer="sleeping") == "The cat jumps onto the sofa. It sleeps there."
    inside = "<think>The cat jumps. <answer>B</answer> It naps.</think><answer>B</answer>"
    assert hint_from_trace(inside, 5, answer="B") == "The cat jumps. It naps."
    unclosed = "<think>The cat jumps. It naps. <answer>B</think>"
    assert hint_from_trace(unclosed, 5, answer="B") == "The cat jumps. It naps."
    for trace in (no_think, inside, unclosed):
        hint = hint_from_trace(trace, 5, answer="B")
        assert "<answer>" not in hint and "</answer>" not in hint and "<think>" not in hint


def test_empty_hint_when_every_sentence_leaks() -> None:
    trace = "<think>The answer is 4. I see 4 apples. Four in total.</think><answer>4</answer>"
    assert hint_from_trace(trace, 3, answer="4") == ""
    assert hint_from_trace("<answer>4</answer>", 1, answer="4") == ""
    assert hint_from_trace("", 1, answer="4") == ""


def test_answer_across_two_kept_sentences_is_cut() -> None:
    trace = "<think>He turned left. Right after that he stopped.</think>"
    assert hint_from_trace(trace, 2, answer="left. Right") == "He turned left."


def test_hint_arguments_are_checked() -> None:
    for level in (0, -1, 1.0, True):
        with pytest.raises(ValueError):
            hint_from_trace(TRACE, level, answer="C")  # type: ignore[arg-type]
    for answer in ("", "  ", "<answer> </answer>"):
        with pytest.raises(ValueError):
            hint_from_trace(TRACE, 1, answer=answer)
        with pytest.raises(ValueError):
            answer_revealing_question("Q?", answer)


def test_split_sentences() -> None:
    text = 'Step 1. Count 3.5 litres!  Is it full? He said "stop." Then\n\n2. Pour it.\n(b) Wait. e.g. now'
    assert split_sentences(text) == [
        "Step 1. Count 3.5 litres!",
        "Is it full?",
        'He said "stop."',
        "Then",
        "2. Pour it.",
        "(b) Wait.",
        "e.g.",
        "now",
    ]
    assert split_sentences("  \n ") == []


def test_question_wordings() -> None:
    assert HINT_TEMPLATE == "{question}\nHint: {hint}"
    assert hinted_question("What happens?", "  The man enters. ") == "What happens?\nHint: The man enters."
    assert hinted_question("What happens?", " ") == "What happens?"
    revealed = answer_revealing_question("What happens?\nA. x\nB. y", " B ")
    assert revealed == ANSWER_REVEAL_TEMPLATE.format(question="What happens?\nA. x\nB. y", answer="B")
    assert revealed.startswith("What happens?\nA. x\nB. y\nThe correct answer is: B\n")


# --- frame noise ------------------------------------------------------------------------------------------------


def _frames(value: int | None = None) -> torch.Tensor:
    if value is not None:
        return torch.full((4, 3, 32, 48), value, dtype=torch.uint8)
    return torch.randint(0, 256, (4, 3, 32, 48), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def _noisy(frames: torch.Tensor, level: float, seed: int = 1, sigma0: float = 0.05) -> torch.Tensor:
    return add_frame_noise(frames, level, sigma0=sigma0, generator=torch.Generator().manual_seed(seed))


def test_noise_keeps_shape_dtype_and_input() -> None:
    frames = _frames()
    before = frames.clone()
    out = _noisy(frames, 1.5)
    assert out.shape == frames.shape and out.dtype == torch.uint8
    assert torch.equal(frames, before)
    assert out.data_ptr() != frames.data_ptr()
    assert not torch.equal(out, frames)


def test_noise_is_deterministic_per_seed() -> None:
    frames = _frames()
    assert torch.equal(_noisy(frames, 1.5, seed=3), _noisy(frames, 1.5, seed=3))
    assert not torch.equal(_noisy(frames, 1.5, seed=3), _noisy(frames, 1.5, seed=4))


def test_larger_level_changes_more() -> None:
    frames = _frames(128)
    changes = [(_noisy(frames, level).float() - frames.float()).abs().mean().item() for level in (1.0, 1.8, 3.0)]
    assert changes[0] < changes[1] < changes[2]


def test_noise_is_clipped_to_the_pixel_range() -> None:
    dark, bright = _noisy(_frames(0), 3.0, sigma0=0.2), _noisy(_frames(255), 3.0, sigma0=0.2)
    assert dark.min().item() == 0 and (dark == 0).float().mean().item() > 0.4
    assert bright.max().item() == 255 and (bright == 255).float().mean().item() > 0.4


@pytest.mark.parametrize("level", [1.0, 1.8, 3.0])
def test_noise_std_matches_level_times_sigma0(level: float) -> None:
    frames = _frames(128)
    change = _noisy(frames, level, sigma0=0.02).double() - 128.0
    expected_std = level * 0.02 * 255
    assert change.mean().item() == pytest.approx(0.0, abs=4 * expected_std / change.numel() ** 0.5)
    assert change.std().item() == pytest.approx(expected_std, rel=0.03)


def test_noise_arguments_are_checked() -> None:
    frames = _frames(128)
    generator = torch.Generator().manual_seed(0)
    for level, sigma0 in ((0.0, 0.05), (-1.0, 0.05), (float("nan"), 0.05), (1.0, 0.0), (1.0, -0.1)):
        with pytest.raises(ValueError):
            add_frame_noise(frames, level, sigma0=sigma0, generator=generator)
    for bad in (frames.float(), frames[0]):
        with pytest.raises(ValueError):
            add_frame_noise(bad, 1.0, sigma0=0.05, generator=generator)
