"""`scripts/gpu_check.sh`: GRPO in bf16 at the real Qwen2.5-VL sizes on one GPU, measured and checked.

Random weights, built from the published configurations (`QWEN25_VL_SIZES`) on the GPU; nothing is
downloaded. Synthetic clips are made by ``prepare`` on any machine (it needs PyAV to write them),
so the GPU machine only reads them. ``run`` then does, each case in its own process:

- ``3b-repeated``, ``3b-shared``, ``3b-default``: GRPO steps of the 3B model on 16-frame clips with the
  prompt repeated, with the shared-prefix loss forward, and with the shared prefill too (the default);
- ``7b-lora``: the 7B model with LoRA and activation checkpointing at the largest frame count that fits
  (tried from the largest down);
- ``3b-zero3``: the 3B model under DeepSpeed ZeRO-3 on one GPU (bf16, activation checkpointing);
- ``3b-equivalence``: shared-prefix against repeated log-probs and gradients in bf16;
- ``3b-resume``: two steps, a checkpoint, two more, against four straight (3B widths, two layers).

Each step's phase times come from the trainer (CUDA-synchronised); the training pass is the loss
forward and backward, its model FLOPs are counted by `vlm_rl.flops`. Every completion gets a random
reward (random weights answer nothing right), so the advantages and the gradients are not zero.
With ``--smoke`` every case runs the ``small`` tiny model in float32 on whatever device there is,
which is how the test suite runs this file's code. Without a CUDA device and without ``--smoke``,
``run`` prints why and exits with `SKIPPED` (77).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

SKIPPED = 77
"""Exit status of ``run`` without a CUDA device (the automake convention for a skipped test)."""

REPO = Path(__file__).resolve().parents[1]
FRAME_SIDE = 308
"""Clip side in pixels: 11x11 merged tokens a temporal slice, about Video-R1's 128*28*28 pixels a frame."""


@dataclass(frozen=True)
class Case:
    """One measurement: what runs, on which model, in which form."""

    name: str
    kind: str  # train | equivalence | resume
    size: str
    mode: str = "prefill"
    frames: tuple[int, ...] = (16,)
    layers: int | None = None
    lora: bool = False
    checkpointing: bool = False
    zero3: bool = False


CASES = (
    Case("3b-repeated", "train", "3b", mode="repeated"),
    Case("3b-shared", "train", "3b", mode="shared"),
    Case("3b-default", "train", "3b"),
    Case("7b-lora", "train", "7b", frames=(128, 64, 32, 16), lora=True, checkpointing=True),
    Case("3b-zero3", "train", "3b", checkpointing=True, zero3=True),
    Case("3b-equivalence", "equivalence", "3b"),
    Case("3b-resume", "resume", "3b", layers=2),
)
CASE_NAMES = tuple(case.name for case in CASES)


@dataclass(frozen=True)
class Scale:
    """Batch, lengths and steps of a run (`FULL` on the GPU, `SMOKE` for the CPU test)."""

    prompts: int = 2
    generations: int = 8
    max_new_tokens: int = 128
    warmup: int = 1
    steps: int = 2
    dtype: str = "bfloat16"
    case_timeout: int = 240


FULL = Scale()
SMOKE = Scale(prompts=1, generations=2, max_new_tokens=4, warmup=0, steps=1, dtype="float32", case_timeout=600)


def random_reward(ctx) -> float:
    """A reward drawn from Python's seeded generator (checkpointed, so a resumed run draws the same)."""
    return random.random()


# ---------------------------------------------------------------- preparing (any machine)


def frame_counts(cases: list[Case], smoke: bool) -> list[int]:
    return sorted({f for case in cases for f in _frames(case, smoke)})


def _frames(case: Case, smoke: bool) -> tuple[int, ...]:
    return tuple(sorted({min(f, 8) for f in case.frames}, reverse=True)) if smoke else case.frames


def prepare(work: Path, cases: list[Case], scale: Scale, smoke: bool) -> None:
    """Clips for every frame count the cases use, under ``work/data/f<frames>``."""
    side = 56 if smoke else FRAME_SIDE
    clips = scale.prompts * (scale.warmup + scale.steps + 2)
    for frames in frame_counts(cases, smoke):
        out = work / "data" / f"f{frames}"
        if not (out / "train.json").exists():
            from data_pipelines.synthetic.generator import make_dataset  # PyAV writes the clips
            from data_pipelines.synthetic.scenes import Difficulty

            make_dataset(out, n_train=clips, n_test=1, seed=0, tasks=["count"],
                         difficulty=Difficulty(frames=frames, size=side, fps=4.0))
        print(f"gpu_check: clips of {frames} frames ({side}x{side}) in {out}")


def model_dims(size: str, layers: int | None, smoke: bool):
    """The model size of a case; `layers` cuts the text and vision depth (the full-attention vision blocks follow)."""
    from vlm_rl.models.tiny import model_size

    dims = model_size("small" if smoke else size)
    if layers is not None:
        dims = dataclasses.replace(dims, num_layers=layers, vision_depth=min(layers, dims.vision_depth))
    return dims


def build_model(work: Path, case: Case, smoke: bool) -> Path:
    """The case's random-weight model, built on the GPU when there is one and saved in the run dtype."""
    from vlm_rl.models.tiny import build_tiny_model

    depth = "" if case.layers is None else f"-{case.layers}l"
    out = work / "models" / (f"{'small' if smoke else case.size}{depth}")
    if not (out / "config.json").exists():
        started = time.perf_counter()
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.float32 if smoke else torch.bfloat16
        build_tiny_model(out, size=model_dims(case.size, case.layers, smoke), seed=0, device=device, dtype=dtype)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        print(f"gpu_check: built {out.name} in {time.perf_counter() - started:.1f} s")
    return out


# ---------------------------------------------------------------- one case (its own process)


def run_config(case: Case, scale: Scale, model: Path, data: Path, out: Path, *, frames: int, steps: int, extra=()):
    from vlm_rl.bench import MODES
    from vlm_rl.config import load_config

    shared_prefix, shared_prefill = MODES[case.mode]
    side = int(json.loads((data / "dataset_info.json").read_text())["difficulty"]["size"])
    pixels = side * side
    return load_config(None, [
        "seed=0", f"output_dir={out}", f"model.path={model}", f"model.dtype={scale.dtype}", "model.attn_implementation=sdpa",
        f"model.shared_prefix={str(shared_prefix).lower()}", f"rollout.shared_prefill={str(shared_prefill).lower()}",
        f"model.gradient_checkpointing={str(case.checkpointing).lower()}", f"model.lora.enabled={str(case.lora).lower()}",
        "model.lora.r=64", "model.lora.alpha=128",
        f"data.train_files=[{data / 'train.json'}]", "data.prompt_template=short", "data.video.fps=null",
        f"data.video.nframes={frames}", f"data.video.min_pixels={pixels}", f"data.video.max_pixels={pixels}",
        f"rollout.num_generations={scale.generations}", f"rollout.max_new_tokens={scale.max_new_tokens}",
        "reward.custom={random: 'vlm_rl.gpu_check:random_reward'}", "reward.weights={random: 1.0}",
        f"trainer.steps={steps}", f"trainer.prompts_per_step={scale.prompts}", f"trainer.micro_batch_prompts={scale.prompts}",
        "trainer.sample_every=0", "trainer.save_every=0", "trainer.lr=1e-6", "trainer.report_to=[none]", *extra,
    ])


def train_case(case: Case, scale: Scale, model: Path, work: Path, smoke: bool) -> dict[str, Any]:
    """Warm-up and timed GRPO steps at the largest of the case's frame counts that fits in memory."""
    misses = []
    for frames in _frames(case, smoke):
        try:
            result = _train(case, scale, model, work, frames)
        except torch.cuda.OutOfMemoryError as err:
            misses.append({"frames": frames, "error": str(err).splitlines()[0]})
            gc.collect()
            torch.cuda.empty_cache()
            continue
        return {**result, "frames_out_of_memory": misses}
    raise RuntimeError(f"{case.name}: out of memory at every frame count {list(_frames(case, smoke))}")


def _train(case: Case, scale: Scale, model: Path, work: Path, frames: int) -> dict[str, Any]:
    from vlm_rl.bench import PHASES
    from vlm_rl.flops import GroupShape, peak_tflops, training_flops
    from vlm_rl.training.grpo import GRPOTrainer

    out = work / "runs" / f"{case.name}-f{frames}"
    config = run_config(case, scale, model, work / "data" / f"f{frames}", out, frames=frames,
                        steps=scale.warmup + scale.steps, extra=["trainer.overwrite=true"])
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer = GRPOTrainer(config)
    prompt = _prompt_shape(trainer)
    model_config = trainer.policy.config
    sizes = [(getattr(p, "ds_numel", p.numel()), p.requires_grad) for p in trainer.policy.parameters()]  # ZeRO-3 partitions
    parameters, trainable = sum(n for n, _ in sizes), sum(n for n, grad in sizes if grad)
    engine = "deepspeed zero-3" if trainer.zero3 else "deepspeed" if trainer.deepspeed else "accelerate"
    trainer.train()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "sec_per_step" in r][scale.warmup:]
    median = {phase: statistics.median(r.get(f"time/{phase}", 0.0) for r in rows) for phase in PHASES}
    step = statistics.median(r["sec_per_step"] for r in rows)
    completion = statistics.median(r["completion_length"] for r in rows)
    group = GroupShape(prompt["tokens"], prompt["vision_tokens"], prompt["slices"], scale.generations, round(completion))
    shared_prefix = config.model.shared_prefix
    flops = scale.prompts * training_flops(model_config, group, shared_prefix=shared_prefix)
    train_seconds = median["forward"] + median["backward"]
    completions = scale.prompts * scale.generations
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu"
    peak = peak_tflops(device) if torch.cuda.is_available() else None
    tflops = flops / train_seconds / 1e12 if train_seconds else None
    return {
        "frames": frames, "layers": model_config.text_config.num_hidden_layers, "engine": engine,
        "parameters": parameters, "trainable": trainable,
        "prompt_tokens": prompt["tokens"], "vision_tokens": prompt["vision_tokens"], "completion_length": completion,
        "step_s": step, "phases_s": median, "generation_share": median["generation"] / step,
        "generation_tokens_per_s": completions * completion / median["generation"] if median["generation"] else None,
        "train_tokens": scale.prompts * (prompt["tokens"] + scale.generations * completion),
        "train_tokens_per_s": scale.prompts * (prompt["tokens"] + scale.generations * completion) / train_seconds,
        "train_tflop": flops / 1e12, "train_tflops_per_s": tflops, "peak_tflops": peak,
        "mfu": tflops / peak if tflops and peak else None, "peak_memory_gib": _peak_gib(),
    }


def _prompt_shape(trainer) -> dict[str, int]:
    """Tokens of the first training prompt, its merged vision tokens and its temporal slices."""
    from data_pipelines.formats.video_r1 import load_samples

    inputs = trainer.encoder.encode(load_samples(trainer.config.data.train_files[0])[0])
    grid = inputs.video_grid_thw
    slices, height, width = (int(v) for v in grid[0]) if grid is not None else (1, 0, 0)
    return {"tokens": inputs.length, "vision_tokens": slices * height * width // 4, "slices": slices}


def _peak_gib() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def equivalence_case(case: Case, scale: Scale, model_dir: Path, work: Path, smoke: bool) -> dict[str, Any]:
    """Shared-prefix against repeated log-probs and gradients in the run dtype. The tolerance is the run dtype's own
    error (the repeated form in the run dtype against the same weights in float32), and at least `FLOAT32_TOLERANCE`."""
    from data_pipelines.formats.video_r1 import load_samples
    from vlm_rl.models.loading import load_adapter, load_model
    from vlm_rl.models.logprobs import completion_logprobs
    from vlm_rl.models.prompt_encoder import PromptEncoder

    frames = _frames(case, smoke)[0]
    config = run_config(case, scale, model_dir, work / "data" / f"f{frames}", work / "runs" / case.name, frames=frames, steps=1)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    adapter = load_adapter(str(model_dir))
    model = load_model(config.model, trainable=True).to(device).train()
    encoder = PromptEncoder(adapter, config.data)
    prompts = [encoder.encode(s) for s in load_samples(config.data.train_files[0])[:2]]
    generator = torch.Generator().manual_seed(0)
    vocab = [t for t in range(10, len(adapter.tokenizer)) if t not in adapter.blocked_token_ids]
    completions = [[vocab[int(i)] for i in torch.randint(len(vocab), (scale.max_new_tokens,), generator=generator)]
                   for _ in range(2 * scale.generations)]
    batch = adapter.collate(prompts, scale.generations, completions)
    weights = torch.randn(batch.completion_mask.shape, generator=generator).to(device)
    mask = batch.completion_mask.bool().to(device)

    def measure(shared: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        logp, _, _ = completion_logprobs(model, batch, shared_prefix=shared)
        (logp * weights * mask).sum().backward()
        grads = {n: p.grad.detach().float().cpu() for n, p in model.named_parameters() if p.grad is not None}
        return logp.detach().float()[mask].cpu(), grads

    repeated, shared = measure(False), measure(True)
    model.float()
    exact = measure(False)
    del model
    gc.collect()
    logp_tolerance = max(_relative(repeated[0], exact[0]), FLOAT32_TOLERANCE)
    grad_tolerance = max(_grads_relative(repeated[1], exact[1]), FLOAT32_TOLERANCE)
    return {
        "dtype": scale.dtype, "frames": frames, "rows": 2 * scale.generations, "completion_tokens": scale.max_new_tokens,
        "logprobs_shared_vs_repeated": _relative(shared[0], repeated[0]),
        "logprobs_dtype_error": _relative(repeated[0], exact[0]),
        "logprobs_max_abs_shared_vs_repeated": float((shared[0] - repeated[0]).abs().max()),
        "grads_shared_vs_repeated": _grads_relative(shared[1], repeated[1]),
        "grads_dtype_error": _grads_relative(repeated[1], exact[1]),
        "within_tolerance": _relative(shared[0], repeated[0]) <= logp_tolerance
        and _grads_relative(shared[1], repeated[1]) <= grad_tolerance,
    }


FLOAT32_TOLERANCE = 1e-5
"""Relative difference the two forms may have in float32 (summation order alone)."""


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp(min=1e-12))


def _grads_relative(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Relative L2 difference of all gradients together."""
    diff = sum(float((a[n] - b[n]).pow(2).sum()) for n in b)
    return (diff / max(sum(float(g.pow(2).sum()) for g in b.values()), 1e-24)) ** 0.5


def resume_case(case: Case, scale: Scale, model: Path, work: Path, smoke: bool) -> dict[str, Any]:
    """Four steps straight against two, a checkpoint and two more: logged metrics and final weights."""
    from safetensors.torch import load_file
    from vlm_rl.training.grpo import GRPOTrainer

    frames = _frames(case, smoke)[0]
    data = work / "data" / f"f{frames}"
    common = ["trainer.save_every=2", "trainer.keep_checkpoints=5", "trainer.overwrite=true"]
    straight, resumed = work / "runs" / "resume-straight", work / "runs" / "resume-resumed"
    GRPOTrainer(run_config(case, scale, model, data, straight, frames=frames, steps=4, extra=common)).train()
    GRPOTrainer(run_config(case, scale, model, data, resumed, frames=frames, steps=2, extra=common)).train()
    trainer = GRPOTrainer(run_config(case, scale, model, data, resumed, frames=frames, steps=4,
                                     extra=[*common[:2], "trainer.resume=auto"]))
    start = trainer.start_step
    trainer.train()
    a, b = _metric_rows(straight), _metric_rows(resumed)
    worst = max((abs(a[s][k] - b[s][k]) / max(abs(a[s][k]), 1e-6), f"step {s} {k}") for s in (3, 4) for k in a[s]
                if isinstance(a[s][k], (int, float)))
    wa, wb = load_file(straight / "final" / "model.safetensors"), load_file(resumed / "final" / "model.safetensors")
    weights = _grads_relative({k: v.float() for k, v in wb.items()}, {k: v.float() for k, v in wa.items()})
    identical = all(torch.equal(wa[k], wb[k]) for k in wa)
    return {"resumed_from_step": start, "frames": frames, "worst_metric_relative": worst[0], "worst_metric": worst[1],
            "weights_relative": weights, "weights_identical": identical,
            "within_tolerance": start == 2 and worst[0] <= 1e-3 and weights <= 1e-3}


def _metric_rows(run: Path) -> dict[int, dict[str, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: {k: v for k, v in r.items() if k not in ("step", "sec_per_step") and not k.startswith("time/")}
            for r in rows if "step" in r}


KINDS = {"train": train_case, "equivalence": equivalence_case, "resume": resume_case}


def run_case(name: str, work: Path, smoke: bool) -> None:
    """Run one case in this process and write its result to ``work/results/<name>.json``."""
    case = next(c for c in CASES if c.name == name)
    scale = SMOKE if smoke else FULL
    model = work / "models" / (f"{'small' if smoke else case.size}{'' if case.layers is None else f'-{case.layers}l'}")
    started = time.perf_counter()
    result = KINDS[case.kind](case, scale, model, work, smoke)
    if _is_main_process():
        result["wall_s"] = time.perf_counter() - started
        (work / "results").mkdir(parents=True, exist_ok=True)
        (work / "results" / f"{name}.json").write_text(json.dumps(result, indent=1))


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# ---------------------------------------------------------------- the driver


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
            proc = subprocess.run(case_command(case, work, smoke), timeout=scale.case_timeout, check=False)
            outcome = json.loads(result_path.read_text()) if proc.returncode == 0 else {"error": f"exit status {proc.returncode}"}
        except subprocess.TimeoutExpired:
            outcome = {"error": f"over its {scale.case_timeout} s limit"}
        except torch.cuda.OutOfMemoryError as err:
            outcome = {"error": f"out of memory building the model: {str(err).splitlines()[0]}"}
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


if __name__ == "__main__":
    sys.exit(main())
