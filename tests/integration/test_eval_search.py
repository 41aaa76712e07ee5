"""`vlm-rl eval` with frame search: tool-loop answers scored by the single-answer rule, search numbers per item
and per report, verification, resume, and the command with --search or a model trained with search."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from data_pipelines.formats.video_r1 import load_samples
from data_pipelines.search_prompt import SEARCH_SYSTEM_PROMPT, SHORT_SEARCH_SYSTEM_PROMPT, VERIFY_SYSTEM_PROMPT
from vlm_rl.cli import main
from vlm_rl.config import ConfigError, EvalConfig, save_config
from vlm_rl.eval.runner import evaluate
from vlm_rl.eval.search_eval import SearchEval
from vlm_rl.eval.table import ReportError
from vlm_rl.models.loading import load_adapter
from vlm_rl.models.prompt_encoder import PromptEncoder

from overrides import with_overrides  # tests/integration is on sys.path under pytest
from scripted_engine import ScriptedEngine
from search_settings import CALL
from search_settings import SEARCH as SEARCH_SETTINGS

pytestmark = pytest.mark.slow

SEARCH = [*SEARCH_SETTINGS, "search.max_turns=3"]


class VerifyingEngine(ScriptedEngine):
    """The scripted search turns, and for verification prompts the next of `verdicts`."""

    def __init__(self, adapter, scripts, verdicts: list[str]) -> None:
        super().__init__(adapter, scripts)
        self.verdicts = list(verdicts)
        self.verified = 0

    def generate(self, prompts, params, *, streamer=None):
        first = self.adapter.tokenizer.decode(prompts[0].input_ids, skip_special_tokens=False)
        if VERIFY_SYSTEM_PROMPT not in first:
            return super().generate(prompts, params)
        self.verified += len(prompts)
        texts = [self.verdicts.pop(0) for _ in prompts]
        out = super().generate(prompts, params)  # the ids do not matter to the verifier, only its texts
        return type(out)(out.completion_ids, texts, out.truncated, out.group_ids)


class FailingEngine:
    def generate(self, prompts, params, *, streamer=None):
        raise AssertionError(f"a resumed evaluation generated for {len(prompts)} prompts")


def _other(letter: str) -> str:
    return "A" if letter != "A" else "B"


@pytest.fixture
def setup(run_config, tiny_model_dir, synthetic_data):
    config = with_overrides(run_config, SEARCH)
    adapter = load_adapter(str(tiny_model_dir))
    encoder = PromptEncoder(adapter, config.data, search_turns=config.search.max_turns)
    samples = [s for s in load_samples(synthetic_data.train_path) if s.problem_type == "multiple choice"][:4]
    right = [s.answer for s in samples]
    scripts = [
        [[CALL.format(name="a"), f"<think>seen</think><answer>{right[0]}</answer>"]],  # searches, answers right
        [['<think>b</think><tool_call>{"name": "zoom", "arguments": {}}</tool_call>', f"<think>b2</think><answer>{_other(right[1])}</answer>"]],
        # an answer inside an unusable call, then the right answer: two answers score 0
        [[f'<think>c</think><tool_call>{{"name": "zoom", "arguments": {{"a": "<answer>{right[2]}</answer>"}}}}</tool_call>',
          f"<think>c2</think><answer>{right[2]}</answer>"]],
        [[f"<think>d</think><answer>{right[3]}</answer>"]],  # answers at once, right; retrieves nothing
    ]
    engine = VerifyingEngine(adapter, scripts, verdicts=[right[0]])
    return config, adapter, encoder, samples, engine


def test_search_items_follow_the_single_answer_rule_and_carry_their_search(setup, tmp_path):
    config, adapter, encoder, samples, engine = setup
    search = SearchEval(config.search, engine, adapter, config.eval, "auto")
    items = tmp_path / "items.jsonl"
    report = evaluate(engine, encoder, samples, config.eval, search=search, items_path=items)

    rewards = [r["reward"] for r in report.results]
    assert rewards == [1.0, 0.0, 0.0, 1.0]
    assert report.accuracy == 0.5
    first, invalid, twice, direct = (r["search"] for r in report.results)
    assert (first["tool_calls"], first["invalid_calls"], first["frames"], first["turns"]) == (1, 0, 4, 2)
    assert first["calls"] == [{"name": "seek_video_frames", "arguments": {"query": "red", "start_time": 0, "end_time": 1}}]
    assert first["texts"][1] == f"<think>seen</think><answer>{samples[0].answer}</answer>"
    assert (first["verifier_answer"], first["verifier_correct"], first["csv"]) == (samples[0].answer, True, 1.0)
    assert (invalid["tool_calls"], invalid["invalid_calls"], invalid["calls"]) == (0, 1, [])
    assert twice["answers"] == [samples[2].answer, samples[2].answer] and twice["search_format"] == 0.0
    assert report.results[2]["scoring_detail"].startswith("2 answers")
    assert direct["status"] == "answered" and direct["frames"] == 0
    assert direct["verifier_answer"] == "I don't know" and direct["csv"] == 0.0, "right, but nothing retrieved"
    assert engine.verified == 1, "only the rollout that retrieved frames is verified by the model"
    assert [r["format"] for r in report.results] == [1.0, 1.0, 0.0, 1.0]

    assert report.search == pytest.approx({
        "tool_calls": 0.25, "valid_call_rate": 1 / 3, "frames": 1.0, "turns": 7 / 4, "answered": 1.0,
        "format_rate": 0.75, "csv_rate": 0.25, "verifier_accuracy": 0.25,
    })
    summary = report.summary()
    assert summary["search/csv_rate"] == 0.25 and summary["accuracy"] == 0.5
    assert report.settings["search"]["max_turns"] == 3

    # a rerun reads every item back from the log and generates nothing
    idle = FailingEngine()
    again = evaluate(idle, encoder, samples, config.eval, search=SearchEval(config.search, idle, adapter, config.eval, "auto"), items_path=items)
    assert again.results == report.results and again.search == report.search
    with pytest.raises(ReportError, match="other settings"):
        evaluate(FailingEngine(), encoder, samples, config.eval, items_path=items)


def test_evaluation_without_search_keeps_its_report(setup, tmp_path):
    config, adapter, encoder, samples, engine = setup
    report = evaluate(engine, encoder, samples[:2], EvalConfig(max_new_tokens=4))
    assert report.search is None and "search" not in report.settings
    assert all("search" not in r for r in report.results)
    report.write(tmp_path / "report.json")
    assert "search" not in json.loads((tmp_path / "report.json").read_text())
    assert "search/tool_calls" not in report.summary()


def test_search_needs_video_records(setup):
    config, adapter, encoder, samples, engine = setup
    image = replace(samples[0], data_type="image", origin="x.json#0")
    with pytest.raises(ConfigError, match=r"x.json#0: frame search evaluates video records only"):
        evaluate(engine, encoder, [image], config.eval, search=SearchEval(config.search, engine, adapter, config.eval, "auto"))


CLI_TINY = ["search.max_turns=2", "search.max_turn_tokens=6", "search.verify_max_tokens=4", "data.video.nframes=4",
            "data.video.fps=null", "search.cache_fps=2"]


def _cli_eval(model: Path, data: Path, out: Path, *extra: str) -> dict:
    main(["eval", "--model", str(model), "--data", str(data), "--out", str(out), "--limit", "2", *extra])
    return json.loads(out.read_text())


def test_eval_command_searches_with_the_flag(tiny_model_dir, synthetic_data, run_config, tmp_path, capsys):
    report = _cli_eval(tiny_model_dir, synthetic_data.test_path, tmp_path / "r.json", "--search", *CLI_TINY)
    assert report["settings"]["prompt_template"] == "timesearch" and report["settings"]["search"]["enabled"]
    assert set(report["search"]) >= {"tool_calls", "valid_call_rate", "frames", "format_rate", "csv_rate", "verifier_accuracy"}
    assert all(r["search"]["texts"] and r["search"]["turns"] >= 1 for r in report["results"])
    out = capsys.readouterr().out
    assert "search: " in out and "tool calls/item" in out
    assert "| search format rate |" in (tmp_path / "r.md").read_text()

    # a config that already has a search prompt keeps it
    model = tmp_path / "short"
    shutil.copytree(tiny_model_dir, model)
    save_config(with_overrides(run_config, ["data.prompt_template=timesearch_short"]), model / "vlm_rl.yaml")
    report = _cli_eval(model, synthetic_data.test_path, tmp_path / "short.json", "--search", *CLI_TINY)
    assert report["settings"]["prompt_template"] == "timesearch_short" and "search" in report


def test_eval_command_searches_for_a_model_trained_with_search(tiny_model_dir, synthetic_data, run_config, tmp_path):
    model = tmp_path / "searcher"
    shutil.copytree(tiny_model_dir, model)
    save_config(with_overrides(run_config, [*SEARCH, *CLI_TINY, "search.csv=false"]), model / "vlm_rl.yaml")
    report = _cli_eval(model, synthetic_data.test_path, tmp_path / "r.json")
    assert report["settings"]["search"]["enabled"] and report["settings"]["search"]["max_turns"] == 2
    assert "csv_rate" not in report["search"] and "tool_calls" in report["search"]
    plain = _cli_eval(model, synthetic_data.test_path, tmp_path / "plain.json", "search.enabled=false", "data.prompt_template=short")
    assert "search" not in plain and all("search" not in r for r in plain["results"])


def test_data_show_renders_the_search_prompt(synthetic_data, capsys):
    records = str(synthetic_data.test_path)
    main(["data", "show", records, "--limit", "1", "data.prompt_template=timesearch", "data.video.fps=null",
          "data.video.nframes=8", "search.max_turns=3"])
    out = capsys.readouterr().out
    assert out.count(SEARCH_SYSTEM_PROMPT) == 1 and '"name": "seek_video_frames"' in out
    assert "preview video (data.video): fps None, nframes 8, " in out
    assert "a maximum of 3 rounds" in out
    assert "The video duration: 1 seconds." in out, "4 frames at 4 fps, read from the file"
    assert out.count("\n--- ") == 1 and "test_0.mp4" in out

    main(["data", "show", records, "--limit", "1", "--template", "timesearch"])
    out = capsys.readouterr().out
    assert "fps 2.0, nframes None, " in out and "a maximum of 8 rounds" in out

    main(["data", "show", records, "--limit", "1"])
    out = capsys.readouterr().out
    assert SEARCH_SYSTEM_PROMPT not in out and "seek_video_frames" not in out and "<answer>" in out

    main(["data", "show", records, "--limit", "1", "--template", "timesearch_short"])
    out = capsys.readouterr().out
    assert SHORT_SEARCH_SYSTEM_PROMPT in out and SEARCH_SYSTEM_PROMPT not in out and "Duration: 1 s." in out
