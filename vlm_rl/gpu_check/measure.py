"""One case of `scripts/gpu_check.sh`, run in its own process: a timed GRPO run, the shared-prefix equivalence
in the run dtype, or resume against an uninterrupted run."""

from __future__ import annotations

import gc
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from vlm_rl.gpu_check.cases import CASES, FULL, SMOKE, Case, Scale, case_frames, model_path, run_config


def train_case(case: Case, scale: Scale, model: Path, work: Path, smoke: bool) -> dict[str, Any]:
    """Warm-up and timed GRPO steps at the largest of the case's frame counts that fits in memory."""
    misses = []
    for frames in case_frames(case, smoke):
        try:
            result = _train(case, scale, model, work, frames)
        except torch.cuda.OutOfMemoryError as err:
            misses.append({"frames": frames, "error": str(err).splitlines()[0]})
        else:
            return {**result, "frames_out_of_memory": misses}
        gc.collect()  # here, not in the handler: the exception's frames hold the failed trainer until it ends
        torch.cuda.empty_cache()
    raise RuntimeError(f"{case.name}: out of memory at every frame count {list(case_frames(case, smoke))}")


def _train(case: Case, scale: Scale, model: Path, work: Path, frames: int) -> dict[str, Any]:
    from vlm_rl.bench import PHASES, _peak_mib
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
    rows = _steps(trainer, scale.warmup + scale.steps)[scale.warmup:]
    median = {phase: statistics.median(r.get(f"time/{phase}", 0.0) for r in rows) for phase in PHASES}
    step = statistics.median(r["sec_per_step"] for r in rows)
    completion = statistics.median(r["completion_length"] for r in rows)
    group = GroupShape(prompt["tokens"], prompt["vision_tokens"], prompt["slices"], scale.generations, round(completion))
    shared_prefix = config.model.shared_prefix
    flops = scale.prompts * training_flops(model_config, group, shared_prefix=shared_prefix)
    train_seconds = median["forward"] + median["backward"]
    completions = scale.prompts * scale.generations
    train_tokens = scale.prompts * (prompt["tokens"] + scale.generations * completion)
    peak = peak_tflops(torch.cuda.get_device_name()) if torch.cuda.is_available() else None
    tflops = flops / train_seconds / 1e12 if train_seconds else None
    return {
        "frames": frames, "layers": model_config.text_config.num_hidden_layers, "engine": engine,
        "parameters": parameters, "trainable": trainable,
        "prompt_tokens": prompt["tokens"], "vision_tokens": prompt["vision_tokens"], "completion_length": completion,
        "step_s": step, "phases_s": median, "generation_share": median["generation"] / step,
        "generation_tokens_per_s": completions * completion / median["generation"] if median["generation"] else None,
        "train_tokens": train_tokens, "train_tokens_per_s": train_tokens / train_seconds,
        "train_tflop": flops / 1e12, "train_tflops_per_s": tflops, "peak_tflops": peak,
        "mfu": tflops / peak if tflops and peak else None, "peak_memory_gib": _peak_mib() / 1024,
    }


def _steps(trainer, n_steps: int) -> list[dict[str, float]]:
    """Each step's metrics and time. The steps are driven here, not by `train`, which would write a checkpoint and
    a final model at the end: tens of GB at these sizes, and time that measures the disk."""
    rows = []
    try:
        for step in range(1, n_steps + 1):
            started = time.perf_counter()
            metrics = trainer.step(step)
            rows.append({**metrics, "sec_per_step": time.perf_counter() - started})
    finally:
        trainer.close()
        trainer.release_run_folder()
    return rows


def _prompt_shape(trainer) -> dict[str, int]:
    """Tokens of the first training prompt, its merged vision tokens and its temporal slices."""
    from data_pipelines.formats.video_r1 import load_samples

    inputs = trainer.encoder.encode(load_samples(trainer.config.data.train_files[0])[0])
    grid = inputs.video_grid_thw
    slices, height, width = (int(v) for v in grid[0]) if grid is not None else (1, 0, 0)
    return {"tokens": inputs.length, "vision_tokens": slices * height * width // 4, "slices": slices}


def equivalence_case(case: Case, scale: Scale, model_dir: Path, work: Path, smoke: bool) -> dict[str, Any]:
    """Shared-prefix against repeated log-probs and gradients in the run dtype. The tolerance is the run dtype's own
    error (the repeated form in the run dtype against the same weights in float32), and at least `FLOAT32_TOLERANCE`."""
    from data_pipelines.formats.video_r1 import load_samples
    from vlm_rl.models.loading import load_adapter, load_model
    from vlm_rl.models.logprobs import completion_logprobs
    from vlm_rl.models.prompt_encoder import PromptEncoder

    frames = case_frames(case, smoke)[0]
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

    frames = case_frames(case, smoke)[0]
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
    model = model_path(work, case, smoke)
    started = time.perf_counter()
    result = KINDS[case.kind](case, scale, model, work, smoke)
    if _is_main_process():
        result["wall_s"] = time.perf_counter() - started
        (work / "results").mkdir(parents=True, exist_ok=True)
        (work / "results" / f"{name}.json").write_text(json.dumps(result, indent=1))


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
