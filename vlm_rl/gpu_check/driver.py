"""The driver of `scripts/gpu_check.sh` (``python -m vlm_rl.gpu_check``): prepare, run every case in its own
process, write the report."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from vlm_rl.gpu_check.cases import CASE_NAMES, CASES, FULL, REPO, SMOKE, Case, build_model, prepare

SKIPPED = 77
"""Exit status of ``run`` without a CUDA device (the automake convention for a skipped test)."""


def environment() -> dict[str, Any]:
    """Card, driver and package versions."""
    env: dict[str, Any] = {"python": platform.python_version(), "torch_cuda": torch.version.cuda}
    for package in ("torch", "transformers", "accelerate", "peft", "deepspeed", "qwen-vl-utils", "decord"):
        try:
            env[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            env[package] = None
    if torch.cuda.is_available():
        env["device"] = torch.cuda.get_device_name()
        env["device_memory_gib"] = torch.cuda.get_device_properties(0).total_memory / 2**30
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        env["driver"] = subprocess.run(query, capture_output=True, text=True, check=False).stdout.strip() or None
    return env


def case_command(case: Case, work: Path, smoke: bool) -> list[str]:
    command = ["-m", "vlm_rl.gpu_check", "case", case.name, "--work", str(work), *(["--smoke"] if smoke else [])]
    if not case.zero3:
        return [sys.executable, *command]
    precision = "no" if smoke else "bf16"
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / "configs/accelerate/zero3.yaml"),
            "--num_processes", "1", "--mixed_precision", precision, *command]


def run_process_group(command: list[str], timeout: float) -> int:
    """Run `command` in a process group of its own; past `timeout` seconds the whole group is killed (a launcher's
    workers too, which would otherwise keep the GPU memory the next case needs) and `TimeoutExpired` raised."""
    proc = subprocess.Popen(command, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise


def run(work: Path, out: Path, cases: list[Case], smoke: bool) -> int:
    """Build, run every case in its own process, write ``gpu_check.json`` and ``gpu_check.md`` under `out`."""
    scale = SMOKE if smoke else FULL
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"environment": environment(), "scale": dataclasses.asdict(scale), "cases": {}}
    print(f"gpu_check: {json.dumps(report['environment'])}", flush=True)
    prepare(work, cases, scale, smoke)
    for case in cases:
        started = time.perf_counter()
        result_path = work / "results" / f"{case.name}.json"
        result_path.unlink(missing_ok=True)
        try:
            build_model(work, case, smoke)
            print(f"gpu_check: {case.name} ...", flush=True)
            status = run_process_group(case_command(case, work, smoke), scale.case_timeout)
            outcome = json.loads(result_path.read_text()) if status == 0 else {"error": f"exit status {status}"}
        except subprocess.TimeoutExpired:
            outcome = {"error": f"over its {scale.case_timeout} s limit"}
        except torch.cuda.OutOfMemoryError as err:
            outcome = {"error": f"out of memory building the model: {str(err).splitlines()[0]}"}
        if (work / "runs").exists():
            shutil.rmtree(work / "runs")  # the resume case's checkpoints; the disk holds the models and little more
        outcome["case_s"] = time.perf_counter() - started
        report["cases"][case.name] = outcome
        print(f"gpu_check: {case.name}: {json.dumps(outcome)}", flush=True)
        (out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    table = summary(report)
    (out / "gpu_check.md").write_text(table)
    print(table)
    return 1 if any("error" in c for c in report["cases"].values()) else 0


def summary(report: dict[str, Any]) -> str:
    """The report as Markdown tables: training cases, then the checks."""
    def cell(value, fmt="{:.2f}"):
        return "—" if value is None else fmt.format(value)

    lines = ["| case | frames | prompt tokens | step s | generation s (share) | generation tok/s | train pass s | "
             "train tok/s | TFLOP/s | MFU | peak GiB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    checks = []
    for name, r in report["cases"].items():
        if "error" in r:
            checks.append(f"- {name}: failed ({r['error']})")
        elif "step_s" in r:
            phases = r["phases_s"]
            lines.append(
                f"| {name} | {r['frames']} | {r['prompt_tokens']} | {r['step_s']:.2f} | {phases['generation']:.2f} "
                f"({r['generation_share']:.0%}) | {cell(r['generation_tokens_per_s'], '{:.0f}')} | "
                f"{phases['forward'] + phases['backward']:.2f} | {r['train_tokens_per_s']:.0f} | "
                f"{cell(r['train_tflops_per_s'], '{:.1f}')} | {cell(r['mfu'], '{:.1%}')} | {r['peak_memory_gib']:.1f} |")
            if r["frames_out_of_memory"]:
                checks.append(f"- {name}: out of memory at {[m['frames'] for m in r['frames_out_of_memory']]} frames")
        elif "logprobs_shared_vs_repeated" in r:
            checks.append(
                f"- {name} ({r['dtype']}): log-probs shared vs repeated {r['logprobs_shared_vs_repeated']:.2e} "
                f"(the dtype's own error {r['logprobs_dtype_error']:.2e}), gradients {r['grads_shared_vs_repeated']:.2e} "
                f"({r['grads_dtype_error']:.2e}): {'within' if r['within_tolerance'] else 'OUTSIDE'} tolerance")
        else:
            checks.append(
                f"- {name}: resumed from step {r['resumed_from_step']}; worst metric difference {r['worst_metric_relative']:.2e} "
                f"({r['worst_metric']}), final weights {r['weights_relative']:.2e}"
                f"{' (identical)' if r['weights_identical'] else ''}: {'within' if r['within_tolerance'] else 'OUTSIDE'} tolerance")
    return "\n".join([*lines, "", *checks, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("prepare", "run"):
        p = sub.add_parser(name)
        p.add_argument("--work", type=Path, required=True, help="models, clips and runs (about 30 GB for run)")
        p.add_argument("--only", type=_case_list, default=list(CASES), help=f"comma-separated cases of {', '.join(CASE_NAMES)}")
        p.add_argument("--smoke", action="store_true", help="the small tiny model in float32 on any device (the test)")
        if name == "run":
            p.add_argument("--out", type=Path, required=True, help="where gpu_check.json and gpu_check.md go")
    p = sub.add_parser("case")
    p.add_argument("name", choices=CASE_NAMES)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.work, args.only, SMOKE if args.smoke else FULL, args.smoke)
        return 0
    if args.command == "case":
        from vlm_rl.gpu_check.measure import run_case

        run_case(args.name, args.work, args.smoke)
        return 0
    if not args.smoke and not torch.cuda.is_available():
        print("gpu_check: no CUDA device (torch.cuda.is_available() is False): the GPU measurements are skipped. "
              "Run it on a machine with an NVIDIA GPU, or add --smoke to exercise it on this one.", file=sys.stderr)
        return SKIPPED
    return run(args.work, args.out, args.only, args.smoke)


def _case_list(text: str) -> list[Case]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASE_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown case(s) {unknown or text!r}; choose from {', '.join(CASE_NAMES)}")
    return [c for c in CASES if c.name in names]
