"""The evaluation's rule scorer (strict and lenient letter matching, the scripts' no-tag fallback), and
failed items: kept in every denominator, reported in one line without the decoder's own output."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from data_pipelines.formats import load_samples
from data_pipelines.schema import Sample
from data_pipelines.synthetic.generator import make_dataset
from data_pipelines.synthetic.mp4 import write_mp4
from vlm_rl.config import EvalConfig
from vlm_rl.eval.runner import RuleScorer, evaluate
from vlm_rl.media import VideoSampling, read_video
from vlm_rl.rollout import Rollouts

MC = Sample(
    sample_id="1", problem="What next?", problem_type="multiple choice", data_type="text", media_path=None,
    options=("A. water plant", "B. put soil in pot"), solution="<answer>B</answer>", answer="B", origin=f"{Path('v.jsonl')}#0",
)


@pytest.mark.parametrize(
    ("output", "strict", "lenient"),
    [
        ("<think>x</think><answer>B</answer>", 1.0, 1.0),
        ("<answer>B. put soil in pot</answer>", 0.0, 1.0),
        ("<answer>(B)</answer>", 0.0, 1.0),
        ("<answer>A</answer>", 0.0, 0.0),
        ("B", 1.0, 1.0),  # no answer block: the whole output is the answer, as in the evaluation scripts
        ("I think it is B", 0.0, 0.0),
        ("", 0.0, 0.0),
    ],
)
def test_strict_and_lenient_letter_matching(output, strict, lenient):
    for mode, headline in (("strict", strict), ("lenient", lenient)):
        score = RuleScorer(mode)(MC, output)
        assert (score.reward_strict, score.reward_lenient, score.reward) == (strict, lenient, headline)
        assert score.method == "rule"


class _DecodingEncoder:
    """Reads each sample's video with decord, as the prompt encoder does; the prompt is the sample's origin."""

    data = SimpleNamespace(prompt_template="video_r1_eval")

    def encode(self, sample: Sample) -> str:
        read_video(sample.media_path, VideoSampling(), reader="decord")
        return sample.origin


class _ScriptedEngine:
    """Answers each prompt (an origin) with a fixed text."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    def generate(self, prompts, params) -> Rollouts:
        texts = [self.answers[p] for p in prompts]
        return Rollouts([[1, 2, 3]] * len(texts), texts, [False] * len(texts), torch.arange(len(texts)))


@pytest.fixture
def clips(tmp_path: Path) -> dict[str, Sample]:
    """Three decodable clips and one that is not a video, as multiple-choice samples."""
    frames = np.random.default_rng(0).integers(0, 255, (4, 56, 56, 3), dtype=np.uint8)
    samples = {}
    for name in ("a", "b", "c", "broken"):
        path = tmp_path / f"{name}.mp4"
        if name == "broken":
            path.write_bytes(b"not an mp4 at all" * 64)
        else:
            write_mp4(path, frames, 4.0)
        samples[name] = replace(MC, sample_id=name, data_type="video", media_path=path, origin=f"v.jsonl#{name}")
    return samples


ANSWERS = {"v.jsonl#a": "<answer>B</answer>", "v.jsonl#b": "<answer>B. put soil in pot</answer>", "v.jsonl#c": "<answer>B</answer>"}


@pytest.mark.parametrize("mc_mode", ["strict", "lenient"])
def test_a_failed_item_stays_in_every_denominator(clips, mc_mode):
    report = evaluate(_ScriptedEngine(ANSWERS), _DecodingEncoder(), list(clips.values()), EvalConfig(mc_mode=mc_mode))
    assert (report.n, report.failures) == (4, 1)
    assert (report.accuracy_strict, report.accuracy_lenient) == (2 / 4, 3 / 4), "correct / n, the failure counted in n"
    assert report.accuracy == {"strict": 2 / 4, "lenient": 3 / 4}[mc_mode]
    by_type = report.by_problem_type["multiple choice"]
    assert (by_type["n"], by_type["accuracy"], by_type["accuracy_lenient"]) == (4, report.accuracy, 3 / 4)
    (failed,) = [r for r in report.results if r["error"]]
    assert failed["sample_id"] == "broken" and failed["reward"] == failed["reward_strict"] == failed["reward_lenient"] == 0.0


def test_a_failed_item_is_one_line_on_stderr_without_the_decoders_output(clips, capfd):
    evaluate(_ScriptedEngine(ANSWERS), _DecodingEncoder(), list(clips.values()), EvalConfig(), progress=True)
    err = capfd.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if "broken.mp4" in line]
    assert len(lines) == 1 and lines[0].startswith("v.jsonl#broken: cannot decode video ")
    assert "re-encode it" in lines[0] and lines[0].endswith("(counted wrong)")
    assert "ERROR opening" not in err and "moov atom not found" not in err


def test_eval_breaks_accuracy_down_by_difficulty(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "mix", n_train=12, n_test=0, seed=1, tasks=("compare", "difficulty_mix"))
    samples = load_samples(data.train_path)
    right = {s.origin: f"<answer>{s.answer}</answer>" for s in samples if s.extra.get("difficulty") != "hard"}
    wrong = {s.origin: "<answer>Z</answer>" for s in samples if s.extra.get("difficulty") == "hard"}
    report = evaluate(_ScriptedEngine({**right, **wrong}), _DecodingEncoder(), samples, EvalConfig())
    by_difficulty = report.by_group["difficulty"]
    assert set(by_difficulty) == {"easy", "hard", "unknown"}
    assert (by_difficulty["easy"]["accuracy"], by_difficulty["hard"]["accuracy"]) == (1.0, 0.0)
    assert by_difficulty["unknown"]["n"] == 6 and by_difficulty["easy"]["n"] + by_difficulty["hard"]["n"] == 6
    compare_only = [s for s in samples if "difficulty" not in s.extra]
    assert evaluate(_ScriptedEngine(right), _DecodingEncoder(), compare_only, EvalConfig()).by_group == {}
