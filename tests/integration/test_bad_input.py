"""Bad input stops the real CLI with one clear line, before any training starts.

Each case builds the bad input in tmp_path from the synthetic data set / tiny model, runs
`python -m vlm_rl.cli train|sft CONFIG ...` in a subprocess and checks: exit code 2, no traceback, a last
stderr line that names the file / record / key, and nothing written: output_dir is not created (or, where it
names an existing file, is left as it was).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vlm_rl.config import save_config

REPO = Path(__file__).resolve().parents[2]
TRAINING_TRACES = ("metrics.jsonl", "samples.jsonl", "checkpoints", "final", "tensorboard")


@dataclass
class Case:
    command: str  # "train" or "sft"
    overrides: list[str]  # on top of the run_config fixture saved as YAML
    config: Path  # config file given to the CLI
    expect: list[str]  # substrings the last stderr line must contain
    expect_re: list[str]  # regexes the last stderr line must match somewhere
    output_dir: Path | None = None  # default: tmp_path / "out", which must not exist afterwards
    env: dict[str, str] = field(default_factory=dict)  # extra environment of the subprocess


@pytest.fixture
def base(run_config, synthetic_data, tiny_model_dir, tmp_path):
    """A copy of the synthetic data set in tmp_path plus the run_config fixture written as a YAML file."""
    data = tmp_path / "data"
    shutil.copytree(Path(synthetic_data.train_path).parent, data)
    config = tmp_path / "run.yaml"
    save_config(run_config, config)
    records = json.loads((data / "train.json").read_text())
    return data, config, records


def _write(path: Path, records) -> Path:
    path.write_text(json.dumps(records, indent=1))
    return path


def _record_re(index: int) -> str:
    """`x.json record 3` or `x.json#3`: either way the 0-based index of the record in the list."""
    return rf"(record {index}\b|#{index}\b)"


# --- the cases ---------------------------------------------------------------------------------------------------


def missing_video(tmp_path, data, config, records, model) -> Case:
    index = 3
    (data / records[index]["path"]).unlink()
    video = Path(records[index]["path"]).name
    return Case("train", [f"data.train_files=[{data / 'train.json'}]"], config, ["train.json", video], [_record_re(index)])


def corrupt_mp4(tmp_path, data, config, records, model) -> Case:
    index = 2
    (data / "videos" / "corrupt.mp4").write_bytes(random.Random(0).randbytes(4096))
    records[index]["path"] = "./videos/corrupt.mp4"
    file = _write(data / "corrupt_video.json", records)
    return Case("train", [f"data.train_files=[{file}]"], config, ["corrupt_video.json", "corrupt.mp4"], [_record_re(index)])


def truncated_mp4(tmp_path, data, config, records, model) -> Case:
    """A real clip cut in half (the mp4 index is lost): not decodable, must not be skipped."""
    index = 5
    clip = data / records[index]["path"]
    blob = clip.read_bytes()
    (data / "videos" / "half.mp4").write_bytes(blob[: len(blob) // 2])
    records[index]["path"] = "./videos/half.mp4"
    file = _write(data / "truncated_video.json", records)
    return Case("sft", [f"data.train_files=[{file}]"], config, ["truncated_video.json", "half.mp4"], [_record_re(index)])


def zero_length_mp4(tmp_path, data, config, records, model) -> Case:
    index = 5
    (data / "videos" / "empty.mp4").write_bytes(b"")
    records[index]["path"] = "./videos/empty.mp4"
    file = _write(data / "empty_video.json", records)
    return Case("sft", [f"data.train_files=[{file}]"], config, ["empty_video.json", "empty.mp4"], [_record_re(index)])


def no_solution(tmp_path, data, config, records, model) -> Case:
    index = 4
    del records[index]["solution"]
    file = _write(data / "no_solution.json", records)
    return Case("sft", [f"data.train_files=[{file}]"], config, ["no_solution.json", "solution"], [_record_re(index)])


def no_solution_jsonl(tmp_path, data, config, records, model) -> Case:
    """In a .jsonl file the record is named by its (1-based) line number."""
    index = 6
    del records[index]["solution"]
    file = data / "no_solution.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in records))
    return Case("train", [f"data.train_files=[{file}]"], config, ["no_solution.jsonl", "solution"], [rf"line {index + 1}\b"])


def letter_not_in_options(tmp_path, data, config, records, model) -> Case:
    index = next(i for i, r in enumerate(records) if r["problem_type"] == "multiple choice" and len(r["options"]) <= 5)
    letters = [o[0] for o in records[index]["options"]]
    assert "F" not in letters
    records[index]["solution"] = "<answer>F</answer>"
    file = _write(data / "bad_letter.json", records)
    return Case("train", [f"data.train_files=[{file}]"], config, ["bad_letter.json", "'F'"], [_record_re(index)])


def empty_dataset(tmp_path, data, config, records, model) -> Case:
    file = _write(data / "nothing.json", [])
    return Case("train", [f"data.train_files=[{file}]"], config, ["nothing.json"], [r"(no records|empty)"])


def bad_eval_record(tmp_path, data, config, records, model) -> Case:
    """A broken held-out file stops the run before training too, not at the first evaluation."""
    test = json.loads((data / "test.json").read_text())
    index = 1
    (data / "videos" / "garbage.mp4").write_bytes(random.Random(1).randbytes(2048))
    test[index]["path"] = "./videos/garbage.mp4"
    file = _write(data / "bad_test.json", test)
    overrides = [f"data.train_files=[{data / 'train.json'}]", f"data.eval_files=[{file}]"]
    return Case("train", overrides, config, ["bad_test.json", "garbage.mp4"], [_record_re(index)])


def unknown_key_override(tmp_path, data, config, records, model) -> Case:
    return Case("train", ["algo.bta=1"], config, ["algo.bta"], [r"unknown"])


def unknown_key_in_yaml(tmp_path, data, config, records, model) -> Case:
    text = config.read_text().replace("trainer:\n", "trainer:\n  stepz: 3\n", 1)
    assert "stepz" in text
    bad = tmp_path / "typo.yaml"
    bad.write_text(text)
    return Case("sft", [], bad, ["trainer.stepz", "typo.yaml"], [r"unknown"])


def _model_copy(tmp_path: Path, model: Path, remove: Callable[[str], bool]) -> Path:
    copy = tmp_path / "model_copy"
    shutil.copytree(model, copy)
    removed = [p.name for p in copy.iterdir() if remove(p.name)]
    assert removed, "nothing removed"
    for name in removed:
        (copy / name).unlink()
    return copy


def model_without_processor(tmp_path, data, config, records, model) -> Case:
    copy = _model_copy(
        tmp_path, model, lambda n: n in ("preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json")
    )
    return Case("train", [f"model.path={copy}"], config, [str(copy), "processor"], [])


def model_without_tokenizer(tmp_path, data, config, records, model) -> Case:
    """Processor config present but tokenizer files gone: transformers would build an empty tokenizer."""
    copy = _model_copy(
        tmp_path,
        model,
        lambda n: n.startswith("tokenizer") or n in ("vocab.json", "merges.txt", "special_tokens_map.json", "added_tokens.json"),
    )
    return Case("train", [f"model.path={copy}"], config, [str(copy), "tokenizer"], [])


def lora_matching_no_module(tmp_path, data, config, records, model) -> Case:
    """An incompatible setting is refused at load with the key to change (DESIGN: config is the documentation)."""
    overrides = ["model.lora.enabled=true", "model.lora.target_modules=[no_such_proj]"]
    return Case("sft", overrides, config, ["model.lora.target_modules", "no_such_proj"], [])


def model_without_config(tmp_path, data, config, records, model) -> Case:
    """A directory that is not a saved model (here: the data set's folder)."""
    return Case("train", [f"model.path={data}"], config, [str(data), "config.json"], [])


def missing_model_path(tmp_path, data, config, records, model) -> Case:
    missing = tmp_path / "no_such_model"
    return Case("train", [f"model.path={missing}"], config, ["model.path", str(missing)], [r"does not exist"])


def image_as_model(tmp_path, data, config, records, model) -> Case:
    image = next((data / "videos").iterdir()).with_suffix(".png")
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    return Case("train", [f"model.path={image}"], config, ["model.path", str(image)], [r"not a (model )?directory"])


def unknown_hub_model(tmp_path, data, config, records, model) -> Case:
    """Neither a local folder nor a hub model (offline here): the line names the key and the value."""
    env = {"HF_HUB_OFFLINE": "1"}
    return Case("train", ["model.path=no-such-org/no-such-model"], config, ["model.path", "no-such-org/no-such-model"], [], env=env)


def output_dir_is_a_file(tmp_path, data, config, records, model) -> Case:
    file = tmp_path / "notes.txt"
    file.write_text("my notes\n")
    return Case("train", [], config, ["output_dir", str(file)], [r"\bfile\b"], output_dir=file)


def output_dir_under_a_file(tmp_path, data, config, records, model) -> Case:
    file = tmp_path / "notes.txt"
    file.write_text("my notes\n")
    return Case("sft", [], config, ["output_dir", str(file)], [r"\bfile\b"], output_dir=file / "run")


def train_files_names_a_directory(tmp_path, data, config, records, model) -> Case:
    return Case("train", [f"data.train_files=[{data}]"], config, [str(data)], [r"(directory|Is a directory)"])


def train_files_missing(tmp_path, data, config, records, model) -> Case:
    missing = data / "no_such.json"
    return Case("sft", [f"data.train_files=[{missing}]"], config, [str(missing)], [r"not found|does not exist"])


CASES = [
    missing_video,
    corrupt_mp4,
    truncated_mp4,
    zero_length_mp4,
    no_solution,
    no_solution_jsonl,
    letter_not_in_options,
    empty_dataset,
    bad_eval_record,
    unknown_key_override,
    unknown_key_in_yaml,
    model_without_processor,
    model_without_tokenizer,
    lora_matching_no_module,
    model_without_config,
    missing_model_path,
    image_as_model,
    unknown_hub_model,
    output_dir_is_a_file,
    output_dir_under_a_file,
    train_files_names_a_directory,
    train_files_missing,
]

OUT_OF_RANGE = [
    # (override, what the error line must say besides the key and the value)
    ("rollout.max_new_tokens=0", ">= 1"),
    ("trainer.micro_batch_prompts=0", ">= 1"),
    ("trainer.prompts_per_step=0", ">= 1"),
    ("trainer.log_every=0", ">= 1"),
    ("trainer.lr=-1", "> 0"),
    ("trainer.steps=-5", ">= 1"),
    ("rollout.num_generations=1", "zero gradient"),
    ("rollout.temperature=-1", ">= 0"),
    ("rollout.top_p=2", "(0, 1]"),
    ("trainer.save_every=-1", ">= 0"),
]


@pytest.mark.slow
@pytest.mark.parametrize("make_case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_stops_with_one_clear_line(make_case, base, tiny_model_dir, tmp_path):
    data, config, records = base
    _check_refused(make_case(tmp_path, data, config, records, tiny_model_dir), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(("override", "allowed"), OUT_OF_RANGE, ids=[o for o, _ in OUT_OF_RANGE])
def test_out_of_range_value_stops_with_one_clear_line(override, allowed, base, tmp_path):
    """A value outside its field's range is refused at load: the line names the key, the value and the range."""
    data, config, records = base
    key, value = override.split("=")
    _check_refused(Case("train", [override], config, [key, value, allowed], []), tmp_path)


def _check_refused(case: Case, tmp_path: Path) -> None:
    output_dir = case.output_dir or tmp_path / "out"
    before = output_dir.read_bytes() if output_dir.is_file() else None
    proc = subprocess.run(
        [sys.executable, "-m", "vlm_rl.cli", case.command, str(case.config), *case.overrides, f"output_dir={output_dir}"],
        cwd=REPO,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false", **case.env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    where = f"\n--- stderr (tail) ---\n{proc.stderr[-3000:]}"
    assert proc.returncode != 0, f"bad input was accepted{where}"
    assert "Traceback" not in proc.stderr, f"a traceback instead of one clear line{where}"
    assert proc.returncode == 2, f"exit code {proc.returncode}, not 2 (a user error){where}"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines, "no message at all"
    last = lines[-1]
    assert re.search(r"\berror\b", last, re.IGNORECASE), f"last stderr line is not an error message: {last!r}{where}"
    for text in case.expect:
        assert text in last, f"{text!r} not named in the error line {last!r}{where}"
    for pattern in case.expect_re:
        assert re.search(pattern, last), f"{pattern!r} not found in the error line {last!r}{where}"
    assert not re.search(r"\b(grpo|sft):\s+\d+%", proc.stderr), f"a training progress bar was started{where}"
    if before is not None:
        assert output_dir.read_bytes() == before, f"the file named by output_dir was changed{where}"
    else:
        written = sorted(p.name for p in output_dir.iterdir()) if output_dir.exists() else []
        assert not output_dir.exists(), f"output_dir was created ({written}){where}"
