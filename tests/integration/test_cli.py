"""The `vlm-rl` command end to end, each subcommand run as a real subprocess.

make-tiny-model -> make-data -> eval (untrained) -> sft 2 steps -> eval (SFT, config from the model dir)
-> train (GRPO) 2 steps -> plot -> report, plus `vlm-rl config`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_run import TINY_RUN
import yaml

REPO = Path(__file__).resolve().parents[2]
VLM_RL = Path(sys.executable).parent / "vlm-rl"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

TINY = [*TINY_RUN, "eval.max_new_tokens=8"]


def run_cli(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "vlm_rl.cli", *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, f"vlm-rl {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# --- module fixtures: one CLI-built model, data set and pair of runs shared by the tests -----------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def cli_model(work) -> tuple[Path, subprocess.CompletedProcess]:
    """`vlm-rl make-tiny-model` through the installed console script."""
    out = work / "model-init"
    proc = subprocess.run(
        [str(VLM_RL), "make-tiny-model", str(out), "--size", "tiny", "--seed", "0"],
        cwd=REPO,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, proc


@pytest.fixture(scope="module")
def cli_data(work) -> tuple[Path, subprocess.CompletedProcess]:
    out = work / "data"
    proc = run_cli("make-data", out, "--n-train", "8", "--n-test", "4", "--seed", "0")
    return out, proc


@pytest.fixture(scope="module")
def untrained_eval(work, cli_model, cli_data) -> tuple[Path, subprocess.CompletedProcess]:
    model, _ = cli_model
    data, _ = cli_data
    out = work / "eval_untrained.json"
    proc = run_cli(
        "eval", "--model", model, "--data", data / "test.json", "--config", "configs/quickstart_sft.yaml", "--out", out
    )
    return out, proc


@pytest.fixture(scope="module")
def sft_run(work, cli_model, cli_data) -> tuple[Path, subprocess.CompletedProcess]:
    model, _ = cli_model
    data, _ = cli_data
    run_dir = work / "sft"
    proc = run_cli(
        "sft",
        "configs/quickstart_sft.yaml",
        f"model.path={model}",
        f"data.train_files=[{data / 'train.json'}]",
        f"data.eval_files=[{data / 'test.json'}]",
        f"output_dir={run_dir}",
        *TINY,
    )
    return run_dir, proc


@pytest.fixture(scope="module")
def grpo_run(work, sft_run, cli_data) -> tuple[Path, subprocess.CompletedProcess]:
    sft_dir, _ = sft_run
    data, _ = cli_data
    run_dir = work / "grpo"
    proc = run_cli(
        "train",
        "configs/quickstart_grpo.yaml",
        f"model.path={sft_dir / 'final'}",
        f"data.train_files=[{data / 'train.json'}]",
        f"data.eval_files=[{data / 'test.json'}]",
        f"output_dir={run_dir}",
        *TINY,
    )
    return run_dir, proc


@pytest.fixture(scope="module")
def sft_eval(sft_run, cli_data) -> tuple[Path, subprocess.CompletedProcess]:
    """Eval with neither --config nor --out: the config comes from MODEL/vlm_rl.yaml, the report goes to MODEL/eval/."""
    sft_dir, _ = sft_run
    data, _ = cli_data
    proc = run_cli("eval", "--model", sft_dir / "final", "--data", data / "test.json")
    return sft_dir / "final" / "eval" / "test.json", proc


def metrics_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


# --- make-tiny-model / make-data ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_make_tiny_model_writes_a_qwen2_5_vl_directory(cli_model):
    model, proc = cli_model
    assert str(model) in proc.stdout
    config = json.loads((model / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_vl"
    assert (model / "model.safetensors").stat().st_size > 0
    assert (model / "tokenizer.json").is_file() or (model / "vocab.json").is_file()
    assert any((model / name).is_file() for name in ("processor_config.json", "preprocessor_config.json"))

    # The chat and vision special tokens are single added tokens of the saved tokenizer.
    added = {t["content"]: t for t in json.loads((model / "tokenizer.json").read_text())["added_tokens"]}
    for token in ("<|im_start|>", "<|im_end|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"):
        assert token in added and added[token]["special"], token


def test_make_data_writes_records_and_videos(cli_data):
    data, proc = cli_data
    assert str(data / "train.json") in proc.stdout and str(data / "test.json") in proc.stdout
    train = json.loads((data / "train.json").read_text())
    test = json.loads((data / "test.json").read_text())
    assert len(train) == 8 and len(test) == 4
    for record in train + test:
        assert record["solution"].startswith("<answer>") and record["solution"].endswith("</answer>")
        video = data / record["path"]
        assert video.is_file() and video.stat().st_size > 0, video
        assert video.read_bytes()[4:8] == b"ftyp", f"{video} is not an mp4"
    assert len({r["path"] for r in train + test}) == 12, "every record has its own clip"


def test_make_data_task_subset(work):
    out = work / "data_subset"
    run_cli("make-data", out, "--n-train", "6", "--n-test", "2", "--tasks", "color,direction")
    records = json.loads((out / "train.json").read_text()) + json.loads((out / "test.json").read_text())
    assert len(records) == 8
    assert {r["task"] for r in records} <= {"color", "direction"}


# --- eval ----------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_eval_report_has_every_metric_and_every_record(untrained_eval, cli_data, cli_model):
    out, proc = untrained_eval
    data, _ = cli_data
    records = json.loads((data / "test.json").read_text())
    report = json.loads(out.read_text())

    for key in ("n", "accuracy", "format_rate", "mean_length", "by_problem_type", "by_task", "results", "settings"):
        assert key in report, key
    assert report["n"] == len(records) == 4
    assert 0.0 <= report["accuracy"] <= 1.0 and 0.0 <= report["format_rate"] <= 1.0
    assert 0 < report["mean_length"] <= 24, "quickstart_sft.yaml caps eval answers at 24 tokens"

    # One result per record, in order, none dropped or substituted.
    results = report["results"]
    assert len(results) == len(records)
    assert [r["origin"] for r in results] == [f"{data / 'test.json'}#{i}" for i in range(len(records))]
    assert [r["answer"] for r in results] == [rec["solution"][len("<answer>") : -len("</answer>")] for rec in records]
    assert report["mean_length"] == pytest.approx(sum(r["length"] for r in results) / len(results))
    assert report["accuracy"] == pytest.approx(sum(r["reward"] for r in results) / len(results))

    # Accuracy per problem type covers exactly the types present, with counts that add up.
    types = {rec["problem_type"] for rec in records}
    assert set(report["by_problem_type"]) == types
    for name, group in report["by_problem_type"].items():
        rows = [r for r in results if r["problem_type"] == name]
        assert group["n"] == len(rows)
        assert group["accuracy"] == pytest.approx(sum(r["reward"] for r in rows) / len(rows))
    assert sum(g["n"] for g in report["by_problem_type"].values()) == report["n"]

    assert report["settings"]["prompt_template"] == "short"
    assert report["settings"]["model"] == str(cli_model[0])
    assert "accuracy" in proc.stdout and str(out) in proc.stdout


@pytest.mark.slow
def test_eval_defaults_to_the_models_config_and_eval_dir(sft_eval, cli_data):
    out, proc = sft_eval
    assert out.is_file(), f"no report at the default path; stdout: {proc.stdout}"
    report = json.loads(out.read_text())
    assert report["n"] == 4 and len(report["results"]) == 4
    # The SFT run's vlm_rl.yaml (eval.max_new_tokens=8, short prompts) was used, not the library defaults.
    assert report["settings"]["max_new_tokens"] == 8
    assert report["settings"]["prompt_template"] == "short"
    assert all(r["length"] <= 8 for r in report["results"])


def test_eval_missing_data_file_is_one_line_error(cli_model, work):
    model, _ = cli_model
    missing = work / "no_such_records.json"
    proc = run_cli("eval", "--model", model, "--data", missing, "--config", "configs/quickstart_sft.yaml", check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "no_such_records.json" in last_line(proc.stderr)


# --- sft / train -----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sft_two_steps_from_the_cli(sft_run):
    run_dir, proc = sft_run
    rows = metrics_rows(run_dir)
    steps = [r for r in rows if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(r["loss"] > 0 for r in steps)
    assert any("eval/accuracy" in r for r in rows), "the final evaluation on data.eval_files is logged"
    final = run_dir / "final"
    assert str(final) in proc.stdout
    for name in ("config.json", "model.safetensors", "vlm_rl.yaml", "train_summary.json"):
        assert (final / name).is_file(), name
    summary = json.loads((final / "train_summary.json").read_text())
    assert summary["stage"] == "sft" and summary["steps"] == 2
    saved = yaml.safe_load((final / "vlm_rl.yaml").read_text())
    assert saved["trainer"]["steps"] == 2 and saved["output_dir"] == str(run_dir)


@pytest.mark.slow
def test_grpo_two_steps_from_the_cli(grpo_run, sft_run):
    run_dir, proc = grpo_run
    rows = metrics_rows(run_dir)
    steps = [r for r in rows if "reward" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for row in steps:
        for key in ("reward", "accuracy", "kl", "entropy", "completion_length", "loss"):
            assert key in row, key
        assert 0 < row["completion_length"] <= 8
    final = run_dir / "final"
    assert str(final) in proc.stdout
    assert (final / "model.safetensors").is_file()
    summary = json.loads((final / "train_summary.json").read_text())
    assert summary["stage"] == "grpo" and summary["steps"] == 2
    # The GRPO run started from the SFT model.
    saved = yaml.safe_load((final / "vlm_rl.yaml").read_text())
    assert saved["model"]["path"] == str(sft_run[0] / "final")
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert {s["step"] for s in samples} == {1, 2}


# --- plot --------------------------------------------------------------------------------------------------------------


def _pngs(proc: subprocess.CompletedProcess) -> dict[str, Path]:
    paths = [Path(line.strip()) for line in proc.stdout.splitlines() if line.strip().endswith(".png")]
    return {p.stem: p for p in paths}


@pytest.mark.slow
def test_plot_grpo_run_writes_png_curves(grpo_run):
    run_dir, _ = grpo_run
    proc = run_cli("plot", run_dir)
    written = _pngs(proc)
    for curve in ("reward", "accuracy", "completion_length", "kl", "entropy"):
        assert curve in written, f"no {curve} curve in {sorted(written)}"
    for path in written.values():
        assert path.parent == run_dir / "plots"
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC, path
        assert len(data) > 1000, f"{path} is suspiciously small"
    assert sorted(p.name for p in (run_dir / "plots").iterdir()) == sorted(p.name for p in written.values())


@pytest.mark.slow
def test_plot_sft_run_has_loss_and_no_reward(sft_run):
    run_dir, _ = sft_run
    written = _pngs(run_cli("plot", run_dir))
    assert "loss" in written and written["loss"].read_bytes()[:8] == PNG_MAGIC
    assert "reward" not in written, "an SFT run logs no reward; no empty curve is drawn"


def test_plot_without_metrics_is_one_line_error(tmp_path):
    proc = run_cli("plot", tmp_path, check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    line = last_line(proc.stderr)
    assert "metrics.jsonl" in line and str(tmp_path) in line


# --- report ----------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_prints_a_markdown_table_with_the_labels(untrained_eval, sft_eval):
    untrained, _ = untrained_eval
    sft, _ = sft_eval
    proc = run_cli("report", untrained, sft, "--labels", "x,y")
    lines = proc.stdout.strip().splitlines()
    assert lines[0].replace(" ", "") == "|metric|x|y|"
    assert set(lines[1].replace("|", "")) <= set("-: ")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in lines[2:]}
    u, s = json.loads(untrained.read_text()), json.loads(sft.read_text())
    assert rows["accuracy"] == [f"{u['accuracy']:.1%}", f"{s['accuracy']:.1%}"]
    assert rows["format rate"] == [f"{u['format_rate']:.1%}", f"{s['format_rate']:.1%}"]
    assert rows["records"] == ["4", "4"]
    # The untrained model has no training summary; the SFT model's training time is read from its train_summary.json.
    assert rows["training wall time (s)"][0] == "-"
    assert rows["training wall time (s)"][1].isdigit()
    assert all(len(cells) == 2 for cells in rows.values())


@pytest.mark.slow
def test_report_label_count_mismatch_is_one_line_error(untrained_eval):
    untrained, _ = untrained_eval
    proc = run_cli("report", untrained, untrained, "--labels", "only_one", check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "label" in last_line(proc.stderr)


# --- config ----------------------------------------------------------------------------------------------------------


def _leaf_keys(cls, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(cls):
        value = getattr(cls(), f.name)
        if dataclasses.is_dataclass(value):
            keys.extend(_leaf_keys(type(value), f"{prefix}{f.name}."))
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def test_config_lists_every_field_with_help():
    from vlm_rl.config import RunConfig

    proc = run_cli("config")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    fields = {}
    for line in lines:
        if " = " in line.split("#")[0]:
            key = line.split(" = ", 1)[0].strip()
            assert "  # " in line, f"field without a help comment: {line!r}"
            help_text = line.rsplit("  # ", 1)[1].strip()
            assert len(help_text) > 3, line
            fields[key] = help_text
        else:
            key, _, help_text = line.partition(": ")
            assert help_text.strip(), f"section without help: {line!r}"
    expected = _leaf_keys(RunConfig)
    assert sorted(fields) == sorted(expected)
    assert "algo.beta" in fields and "rollout.num_generations" in fields


def test_config_prints_the_resolved_yaml_with_overrides(tmp_path):
    from vlm_rl.config import load_config

    proc = run_cli("config", "configs/grpo.yaml", "algo.beta=0")
    resolved = yaml.safe_load(proc.stdout)
    source = yaml.safe_load((REPO / "configs" / "grpo.yaml").read_text())
    assert source["algo"]["beta"] != 0
    assert resolved["algo"]["beta"] == 0
    # Everything else comes from the file, and defaults fill the rest of the tree.
    assert resolved["seed"] == source["seed"]
    assert resolved["rollout"]["max_new_tokens"] == source["rollout"]["max_new_tokens"]
    assert resolved["trainer"]["steps"] == source["trainer"]["steps"]
    assert resolved["algo"]["clip_low"] == 0.2
    # The printed YAML is itself a valid config that loads to the same tree.
    path = tmp_path / "resolved.yaml"
    path.write_text(proc.stdout)
    assert dataclasses.asdict(load_config(path)) == dataclasses.asdict(load_config(REPO / "configs" / "grpo.yaml", ["algo.beta=0"]))


def test_config_unknown_key_is_one_line_error():
    proc = run_cli("config", "configs/grpo.yaml", "algo.bta=0", check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    line = last_line(proc.stderr)
    assert "algo.bta" in line
    assert proc.stdout.strip() == "", "nothing is printed for an invalid config"


def test_ton_script_runs_dropout_sft_and_grpo(work, cli_model, cli_data):
    """scripts/train_ton.sh: thought dropout (p = 1 here), SFT on the dropped records, GRPO from the SFT model."""
    model, _ = cli_model
    data, _ = cli_data
    out = work / "ton"
    tiny_stage = [
        f"model.path={model}", "model.dtype=float32", "model.gradient_checkpointing=false", "data.prompt_template=short",
        "data.video.fps=null", "data.video.nframes=4", "data.video.min_pixels=3136", "data.video.max_pixels=3136",
        "trainer.resume=none", "trainer.save_every=0", *TINY,
    ]
    proc = subprocess.run(
        ["bash", "scripts/train_ton.sh", str(data / "train.json"), str(data / "train.json"), str(out), *tiny_stage],
        cwd=REPO, env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "TON_P": "1"},
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    dropped = json.loads((out / "sft_records.json").read_text())
    assert dropped and all(r["process"] == "<think>\n\n</think>" for r in dropped)
    assert "thoughts dropped" in proc.stdout
    assert (out / "sft" / "final" / "config.json").is_file()
    grpo_config = (out / "grpo" / "config.yaml").read_text()
    assert f"path: {out / 'sft' / 'final'}" in grpo_config, "GRPO starts from the SFT model"
    assert all("skip_ratio" in row for row in metrics_rows(out / "grpo") if "reward" in row)
