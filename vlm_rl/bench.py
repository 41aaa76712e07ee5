"""`vlm-rl bench`: time complete GRPO steps on a fixed synthetic workload, phase by phase.

Each mode runs in a fresh process (so its peak memory is its own): it builds the `small` tiny
model and clips of the workload's size in a temporary folder, trains `warmup + steps` GRPO steps
and reports the median of the timed steps. Nothing is downloaded.

The ``search`` workload trains with frame search (TimeSearch-R) on long needle clips: each rollout is a
turn loop over an 8-frame preview with ``seek_video_frames`` tool turns and a GRPO-CSV verification
pass. Every rollout gets the placeholder tool result (``search.placeholder_result``), so the tool runs
even for a model that never calls it; the tool's time, its calls and the hit rate of its frame cache are
reported besides the phases.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

PHASES = ("generation", "rewards", "logprob_passes", "forward", "backward", "optimizer")


@dataclass(frozen=True)
class Workload:
    """Clips and sampling of one benchmark workload."""

    frames: int
    size: int
    image: bool
    num_generations: int = 8
    max_new_tokens: int = 64
    prompts_per_step: int = 1
    search: bool = False


WORKLOADS = {
    "video": Workload(frames=16, size=224, image=False),
    "image": Workload(frames=2, size=224, image=True),
    "long-video": Workload(frames=64, size=224, image=False),
    "search": Workload(frames=8, size=224, image=False, search=True),
}
"""`frames` is the preview's frame count for ``search``, whose clips are 96-frame needle clips at 8 fps;
its `max_new_tokens` bounds each model turn and the verification answer."""

SEARCH_SETTINGS = (
    "data.prompt_template=timesearch", "search.enabled=true", "search.placeholder_result=true", "search.max_turns=4",
    "search.cache_fps=2", "reward.weights={search_format: 1.0, search_accuracy: 0.5}",
)
"""Run settings of the search workload besides its sizes (the official reward weights; CSV on)."""


MODES = {"repeated": (False, False), "shared": (True, False), "prefill": (True, True)}
"""Mode -> (shared-prefix loss forward, shared prefill in generation)."""
MODE_LABELS = {
    "repeated": "repeated prompt",
    "shared": "shared prefix (loss only)",
    "prefill": "shared prefix (loss + generation), default",
    "trl": "TRL GRPOTrainer",
}
"""Mode -> table label; `trl` is TRL's GRPOTrainer at the same settings (`vlm_rl.bench_trl`, image workload only)."""


def bench_config(root: Path, workload_name: str, mode: str, steps: int, warmup: int, seed: int = 0):
    """Build the `small` tiny model and the workload's records under `root`; the run config of one GRPO mode.

    The TRL baseline (`vlm_rl.bench_trl`) reads its settings from this config too, so both sides train the same
    model on the same records with the same sampling and optimisation settings.
    """
    from data_pipelines.synthetic.generator import make_dataset
    from data_pipelines.synthetic.scenes import Difficulty
    from vlm_rl.config import load_config
    from vlm_rl.models.tiny import build_tiny_model

    workload = WORKLOADS[workload_name]
    shared_prefix, shared_prefill = MODES[mode]
    model = build_tiny_model(root / "model", size="small", seed=seed)
    n = workload.prompts_per_step * (steps + warmup)
    data = make_dataset(root / "data", n_train=n, n_test=1, seed=seed, tasks=["needle" if workload.search else "count"],
                        difficulty=Difficulty(frames=workload.frames, size=workload.size, fps=4.0))
    pixels = workload.size * workload.size
    train = _as_images(data.train_path, root, pixels) if workload.image else data.train_path
    search = [*SEARCH_SETTINGS, f"search.max_turn_tokens={workload.max_new_tokens}",
              f"search.verify_max_tokens={workload.max_new_tokens}"] if workload.search else []
    return load_config(None, [
        f"seed={seed}", f"output_dir={root / 'run'}", f"model.path={model}", f"model.shared_prefix={str(shared_prefix).lower()}",
        f"rollout.shared_prefill={str(shared_prefill).lower()}",
        f"data.train_files=[{train}]", "data.prompt_template=short", "data.video.fps=null",
        f"data.video.nframes={workload.frames}", f"data.video.min_pixels={pixels}", f"data.video.max_pixels={pixels}",
        f"data.image.min_pixels={pixels}", f"data.image.max_pixels={pixels}",
        f"rollout.num_generations={workload.num_generations}", f"rollout.max_new_tokens={workload.max_new_tokens}",
        "reward.weights={accuracy: 1.0, format: 1.0}", f"trainer.steps={steps + warmup}",
        f"trainer.prompts_per_step={workload.prompts_per_step}", f"trainer.micro_batch_prompts={workload.prompts_per_step}",
        "trainer.sample_every=0", "trainer.save_every=0", "trainer.lr=1e-5", *search,
    ])


def run_mode(workload_name: str, mode: str, steps: int, warmup: int, seed: int = 0) -> dict[str, float | None]:
    """Train `warmup + steps` steps in this process; medians of the timed steps and the peak memory."""
    if mode == "trl":
        from vlm_rl.bench_trl import run_trl

        return run_trl(workload_name, steps, warmup, seed)
    from vlm_rl.training.grpo import GRPOTrainer

    workload = WORKLOADS[workload_name]
    with tempfile.TemporaryDirectory(prefix="vlm-rl-bench-") as tmp:
        root = Path(tmp)
        trainer = GRPOTrainer(bench_config(root, workload_name, mode, steps, warmup, seed))
        before_train = _peak_mib()
        if workload.search:
            rows = _search_steps(trainer, steps + warmup)[warmup:]
        else:
            trainer.train()
            rows = [json.loads(line) for line in (root / "run" / "metrics.jsonl").read_text().splitlines()][warmup:]
    rows = [r for r in rows if "sec_per_step" in r]
    result = {"step": statistics.median(r["sec_per_step"] for r in rows)}
    for phase in PHASES:
        result[phase] = statistics.median(r.get(f"time/{phase}", 0.0) for r in rows)
    completions = workload.prompts_per_step * workload.num_generations
    result["samples_per_s"] = completions / result["step"]
    result["peak_mib"] = _peak_mib()
    result["before_train_mib"] = before_train  # imports, model, data: what training adds is the difference
    result["completion_length"] = statistics.median(r["completion_length"] for r in rows)
    if workload.search:
        result.update(_search_result(rows, completions))
    return result


class _TimedTools:
    """A run's `SearchTools` whose tool calls are counted and timed (the placeholder result included)."""

    def __init__(self, tools) -> None:
        self.tools = tools
        self.frames = tools.frames
        self.calls = 0
        self.seconds = 0.0

    def environments(self, samples: Sequence[Any]) -> list[Any]:
        from vlm_rl.rollout.turns import ToolCallEnvironment

        return [
            ToolCallEnvironment({name: self._timed(tool) for name, tool in env.tools.items()})
            for env in self.tools.environments(samples)
        ]

    def _timed(self, tool):
        def call(conversation: Sequence[Mapping[str, Any]], arguments: Mapping[str, Any]) -> list[dict[str, Any]]:
            started = time.perf_counter()
            try:
                return tool(conversation, arguments)
            finally:
                self.calls += 1
                self.seconds += time.perf_counter() - started

        return call

    def counters(self) -> dict[str, float]:
        cache = self.frames.cache
        return {"tool": self.seconds, "tool_runs": self.calls, "cache_hits": cache.hits, "cache_misses": cache.misses}


def _search_steps(trainer, n_steps: int) -> list[dict[str, float]]:
    """Train `n_steps` search steps; each step's metrics with its time and what its tool calls did."""
    from vlm_rl.training.frame_search import FrameSearch

    search = trainer.method(FrameSearch)
    search.tools = timed = _TimedTools(search.tools)
    rows = []
    try:
        for step in range(1, n_steps + 1):
            before, started = timed.counters(), time.perf_counter()
            metrics = trainer.step(step)
            metrics["sec_per_step"] = time.perf_counter() - started
            rows.append({**metrics, **{key: value - before[key] for key, value in timed.counters().items()}})
    finally:
        trainer.release_run_folder()
    return rows


def _search_result(rows: list[dict[str, float]], completions: int) -> dict[str, float]:
    """Medians of the tool's seconds and share of generation time, tool runs and frames per rollout; the frame
    cache's hit rate over all timed steps."""
    lookups = sum(r["cache_hits"] + r["cache_misses"] for r in rows)
    return {
        "tool": statistics.median(r["tool"] for r in rows),
        "tool_share": statistics.median(r["tool"] / r["time/generation"] for r in rows),
        "tool_runs": statistics.median(r["tool_runs"] / completions for r in rows),
        "model_calls": statistics.median(r["search/tool_calls"] for r in rows),
        "frames": statistics.median(r["search/frames"] for r in rows),
        "cache_hit_rate": sum(r["cache_hits"] for r in rows) / lookups if lookups else 0.0,
    }


def bench_table(workload: str, modes: list[str], steps: int, warmup: int) -> str:
    """Run each mode (see `MODE_LABELS`) in its own process and format its results with `results_table`."""
    results = {}
    for mode in modes:
        command = [sys.executable, "-m", "vlm_rl.cli", "bench", "--workload", workload, "--steps", str(steps),
                   "--warmup", str(warmup), "--worker", mode]
        done = subprocess.run(command, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"bench worker {mode} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    return results_table(results)


def results_table(results: Mapping[str, Mapping[str, float | None]]) -> str:
    """A Markdown table of `run_mode` results by mode ('—': not measured).

    Under the table, one line per mode: the memory before the first step and the mean completion length; for
    the search workload, a second table of what the tool did (`_search_result`) comes first.
    """
    lines = [
        "| mode | step (s) | " + " | ".join(f"{p} (s)" for p in PHASES) + " | samples/s | peak memory (MiB) |",
        "|---" * (len(PHASES) + 4) + "|",
    ]
    notes, search = [], []
    for mode, r in results.items():
        cells = [f"{r['step']:.2f}", *(_cell(r[p]) for p in PHASES), f"{r['samples_per_s']:.1f}", f"{r['peak_mib']:.0f}"]
        lines.append(f"| {MODE_LABELS[mode]} | " + " | ".join(cells) + " |")
        notes.append(f"- {MODE_LABELS[mode]}: {r['before_train_mib']:.0f} MiB before the first step, "
                     f"{r['completion_length']:.1f} tokens per completion")
        if "tool" in r:
            search.append(f"| {MODE_LABELS[mode]} | {r['tool']:.3f} | {r['tool_share']:.1%} | {r['tool_runs']:.2f} | "
                          f"{r['model_calls']:.2f} | {r['frames']:.2f} | {r['cache_hit_rate']:.1%} |")
    if search:
        search = ["", "| mode | tool (s) | tool share of generation | tool runs/rollout | model calls/rollout | "
                  "frames/rollout | frame-cache hit rate |", "|---" * 7 + "|", *search]
    return "\n".join([*lines, *search, "", *notes])


def _cell(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.2f}"


def _as_images(records_path: Path, root: Path, pixels: int) -> Path:
    """The same records with each clip replaced by its first frame as a PNG (the image workload)."""
    from PIL import Image

    from vlm_rl.media import VideoSampling, read_video

    sampling = VideoSampling(nframes=2, fps=None, min_pixels=pixels, max_pixels=pixels)
    records = json.loads(records_path.read_text())
    for record in records:
        clip = read_video(records_path.parent / record["path"], sampling, reader="auto")
        image = root / "images" / (Path(record["path"]).stem + ".png")
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(clip.frames[0].permute(1, 2, 0).numpy()).save(image)
        record.update(data_type="image", path=str(image))
    out = root / "images.json"
    out.write_text(json.dumps(records))
    return out


def _peak_mib() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
