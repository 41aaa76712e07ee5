"""`scripts/gpu_check.sh`: its arguments, the skip without a GPU, the real-width model it builds, and every case
run end to end with the small tiny model (`--smoke`), so a GPU session spends its time measuring, not debugging."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoConfig

from vlm_rl.gpu_check.cases import CASE_NAMES, FULL, Case, build_model
from vlm_rl.gpu_check.driver import SKIPPED, case_command

REPO = Path(__file__).resolve().parents[2]


def _script(*args: str, env: dict[str, str] | None = None, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "scripts/gpu_check.sh", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_bad_arguments_are_refused_with_the_choices(tmp_path):
    usage = _script()
    assert usage.returncode == 2 and "bash scripts/gpu_check.sh run" in usage.stderr
    assert _script("measure").returncode == 2
    wrong = _script("run", "--only", "3b-default,9b-full", env={"GPU_CHECK_DIR": str(tmp_path)})
    assert wrong.returncode == 2 and "9b-full" in wrong.stderr and "3b-resume" in wrong.stderr
    assert not (tmp_path / "out").exists()


def test_without_a_gpu_run_says_so_and_measures_nothing(tmp_path):
    proc = _script("run", env={"GPU_CHECK_DIR": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == SKIPPED, proc.stderr[-2000:]
    assert "no CUDA device" in proc.stderr and "--smoke" in proc.stderr
    assert not any(tmp_path.iterdir())


def test_zero3_runs_under_accelerate_with_the_zero3_config(tmp_path):
    command = case_command(Case("x", "train", "3b", zero3=True), tmp_path, smoke=False)
    assert command[1:3] == ["-m", "accelerate.commands.launch"] and command[command.index("--mixed_precision") + 1] == "bf16"
    assert command[command.index("--config_file") + 1].endswith("configs/accelerate/zero3.yaml")
    assert case_command(Case("y", "train", "3b"), tmp_path, smoke=False)[1:] == [
        "-m", "vlm_rl.gpu_check", "case", "y", "--work", str(tmp_path)]


@pytest.mark.slow
def test_the_3b_model_at_two_layers_has_the_real_widths_and_vocabulary(tmp_path):
    path = build_model(tmp_path, Case("3b-resume", "resume", "3b", layers=2), smoke=False)
    config = AutoConfig.from_pretrained(path)
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.intermediate_size, text.num_attention_heads, text.num_key_value_heads) == (2048, 11008, 16, 2)
    assert (text.num_hidden_layers, vision.depth, vision.hidden_size, text.vocab_size) == (2, 2, 1280, 151936)
    with safe_open(path / "model.safetensors", "pt") as weights:
        embedding = weights.get_tensor("model.embed_tokens.weight")
    assert embedding.shape == (151936, 2048) and str(embedding.dtype) == "torch.bfloat16"


@pytest.mark.slow
def test_every_case_runs_end_to_end_on_the_small_model(tmp_path):
    proc = _script("run", "--smoke", "--out", str(tmp_path / "out"), env={"GPU_CHECK_DIR": str(tmp_path)}, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    cases = report["cases"]
    assert list(cases) == list(CASE_NAMES) and not [n for n, c in cases.items() if "error" in c]
    repeated, shared, default = cases["3b-repeated"], cases["3b-shared"], cases["3b-default"]
    assert repeated["train_tflop"] > shared["train_tflop"] == default["train_tflop"] > 0
    assert all(c["completion_length"] > 0 and c["step_s"] > 0 and c["train_tokens_per_s"] > 0 for c in (repeated, shared, default))
    assert 0 < cases["7b-lora"]["trainable"] < cases["7b-lora"]["parameters"]
    assert cases["3b-zero3"]["engine"] == "deepspeed zero-3" and cases["3b-zero3"]["parameters"] == repeated["parameters"]
    equivalence = cases["3b-equivalence"]
    assert equivalence["within_tolerance"] and equivalence["logprobs_shared_vs_repeated"] < 1e-5
    assert equivalence["grads_shared_vs_repeated"] < 1e-5
    resume = cases["3b-resume"]
    assert resume["resumed_from_step"] == 2 and resume["within_tolerance"] and resume["weights_identical"]
    table = (tmp_path / "out" / "gpu_check.md").read_text()
    assert "| 3b-default | 8 |" in table and "3b-equivalence (float32)" in table and "3b-resume: resumed from step 2" in table


def test_the_largest_frame_count_that_fits_is_measured_and_the_misses_are_reported(monkeypatch, tmp_path):
    from vlm_rl.gpu_check import measure

    tried = []

    def train(case, scale, model, work, frames):
        tried.append(frames)
        if frames > 32:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return {"frames": frames}

    monkeypatch.setattr(measure, "_train", train)
    case = Case("7b-lora", "train", "7b", frames=(128, 64, 32, 16))
    result = measure.train_case(case, FULL, tmp_path, tmp_path, smoke=False)
    assert tried == [128, 64, 32] and result["frames"] == 32
    assert [miss["frames"] for miss in result["frames_out_of_memory"]] == [128, 64]
    assert "out of memory" in result["frames_out_of_memory"][0]["error"]
    with pytest.raises(RuntimeError, match="out of memory at every frame count"):
        measure.train_case(Case("7b-lora", "train", "7b", frames=(128, 64)), FULL, tmp_path, tmp_path, smoke=False)


def test_a_case_past_its_time_is_killed_with_every_process_it_started(tmp_path):
    from vlm_rl.gpu_check.driver import run_process_group

    marker = tmp_path / "pid"
    script = f"sleep 60 & echo $! > {marker}; wait"
    with pytest.raises(subprocess.TimeoutExpired):
        run_process_group(["bash", "-c", script], timeout=2)
    worker = int(marker.read_text())
    assert not Path(f"/proc/{worker}").exists() or "Z" in Path(f"/proc/{worker}/stat").read_text().split()[2]
    assert run_process_group(["bash", "-c", "exit 3"], timeout=10) == 3
