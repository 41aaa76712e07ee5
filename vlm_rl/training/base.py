"""What the GRPO and SFT loops share: data and model setup, optimiser, checkpoints, logging."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from vlm_rl.config import ConfigError, RunConfig, save_config
from vlm_rl.cpu_threads import CPUThreads
from vlm_rl.eval.runner import evaluate
from vlm_rl.eval.search_eval import SearchEval
from vlm_rl.models.loading import load_adapter, load_model
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.media import ImageSampling
from vlm_rl.records import dataset_columns, load_records
from vlm_rl.rollout import HFRolloutEngine
from vlm_rl.training.checkpoint import (
    find_resume_checkpoint,
    load_checkpoint,
    make_staging_dir,
    remove_checkpoints_after,
    save_checkpoint,
    staging_dir,
)
from vlm_rl.training.metrics_log import RunLogger
from vlm_rl.training.run_folder import RunLock, check_fresh_start, remove_run_files
from vlm_rl.training.sampler import PromptSampler

PROGRESS_KEYS = ("reward", "accuracy", "loss", "sec_per_step")

log = logging.getLogger(__name__)


class Trainer:
    """Builds everything a training loop needs from one RunConfig; subclasses implement `step`."""

    name = "train"

    def __init__(self, config: RunConfig) -> None:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        if not config.data.train_files:
            raise ConfigError("data.train_files is empty; give at least one .json/.jsonl record file or Hugging Face dataset")
        RunLogger.check_report_to(config.trainer.report_to)
        self.config = config
        self.accelerator = Accelerator(kwargs_handlers=_process_group_kwargs())
        set_seed(config.seed)
        self.run_dir = Path(config.output_dir)
        self.is_main = self.accelerator.is_main_process
        self.adapter = load_adapter(config.model.path)
        search_fps = config.search.cache_fps if config.search.enabled else None
        image = ImageSampling(min_pixels=config.data.image.min_pixels, max_pixels=config.data.image.max_pixels)
        self.train_samples = load_records(
            config.data.train_files, config.data.media_root, limit=config.data.limit, reader=config.data.video.reader,
            search_fps=search_fps, image=image, columns=dataset_columns(config.data),
        )
        if not self.train_samples:
            raise ConfigError(f"no training records in {config.data.train_files}")
        self.eval_samples = load_records(
            config.data.eval_files, config.data.media_root, limit=config.trainer.eval_limit, reader=config.data.video.reader,
            search_fps=search_fps, image=image, columns=dataset_columns(config.data),
        )
        self.encoder = PromptEncoder(self.adapter, config.data, search_turns=config.search.max_turns)
        self.sampler = PromptSampler(
            self.train_samples,
            seed=config.seed,
            shuffle=config.data.shuffle,
            rank=self.accelerator.process_index,
            world_size=self.accelerator.num_processes,
        )
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self._lock: RunLock | None = None
        resume_from = self.resumed_from = self._on_main_process(self._claim_run_folder)
        if resume_from is None:
            model = load_model(config.model)
        elif config.model.lora.enabled:
            model = _reload_lora(config, resume_from)
        else:
            model = load_model(dataclasses.replace(config.model, path=str(resume_from / "model")))
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ConfigError("no trainable parameters: check model.freeze_vision and model.lora settings")
        optimizer = torch.optim.AdamW(params, lr=config.trainer.lr, weight_decay=config.trainer.weight_decay)
        scheduler = _scheduler(config, optimizer, self.optimizer_steps())
        plugin = self.accelerator.state.deepspeed_plugin
        self.deepspeed = plugin is not None
        self.zero3 = self.deepspeed and plugin.zero_stage == 3  # partitioned parameters: reading them whole is a collective gather
        if self.zero3 and config.model.lora.enabled:
            raise ConfigError("LoRA under DeepSpeed ZeRO-3 is not supported: use configs/accelerate/zero2.yaml with LoRA")
        if self.deepspeed:
            _configure_deepspeed(plugin.deepspeed_config, config, self.accelerator.num_processes)
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(model, optimizer, scheduler)
        self.start_step = 0
        log_lengths = None
        if resume_from is not None:
            if self.deepspeed:
                self.model.load_checkpoint(str(resume_from / "deepspeed"), tag=DEEPSPEED_TAG)
            state = load_checkpoint(resume_from, None if self.deepspeed else self.optimizer, self.scheduler)
            self.sampler.load_state_dict(state.extra["sampler"])
            self.start_step = state.step
            log_lengths = state.extra.get("log_lengths")
        if self.is_main:
            self._start_run_folder()
        self.logger = RunLogger.for_run(config, enabled=self.is_main, resuming=resume_from is not None)
        if self.is_main:
            save_config(config, self.run_dir / "config.yaml")
            self.logger.truncate_after(self.start_step, log_lengths)

    def _claim_run_folder(self) -> Path | None:
        """Process 0, before anything is written: lock output_dir for this run, refuse a fresh run over an
        existing one (unless trainer.overwrite), and pick the checkpoint to resume from, checked."""
        trainer = self.config.trainer
        self._lock = RunLock(self.run_dir)
        try:
            if trainer.resume == "none":
                check_fresh_start(self.run_dir, trainer.overwrite)
            return find_resume_checkpoint(trainer.resume, self.checkpoint_dir)
        except BaseException:
            self.release_run_folder()
            raise

    def _start_run_folder(self) -> None:
        """Process 0, once the model and states are loaded: clear what this run replaces."""
        if self.config.trainer.resume == "none" and self.config.trainer.overwrite:
            removed = remove_run_files(self.run_dir)
            if removed:
                log.warning("warning: trainer.overwrite=true: removed %s from %s", ", ".join(removed), self.run_dir)
        dropped = remove_checkpoints_after(self.checkpoint_dir, self.start_step)
        if dropped:
            log.warning(
                "warning: resuming from step %d: removed the later checkpoints %s (that run is abandoned past it)",
                self.start_step, ", ".join(p.name for p in dropped),
            )

    def _on_main_process(self, decide):
        """Run `decide` on process 0 only; every process returns its result, or raises the user error it raised."""
        if self.accelerator.num_processes == 1:
            return decide()
        from accelerate.utils import broadcast_object_list

        outcome = [None, None]
        if self.is_main:
            try:
                outcome = [decide(), None]
            except (ConfigError, FileNotFoundError) as err:
                outcome = [None, err]
        broadcast_object_list(outcome)
        if outcome[1] is not None:
            raise outcome[1]
        return outcome[0]

    def release_run_folder(self) -> None:
        """Give up the lock on output_dir (at the end of `train`; also when this object goes, or at exit)."""
        if self._lock is not None:
            self._lock.release()

    @property
    def policy(self):
        """The unwrapped model (for generation and saving)."""
        return self.accelerator.unwrap_model(self.model)

    def optimizer_steps(self) -> int:
        return self.config.trainer.steps

    def step(self, step: int) -> dict[str, float]:
        raise NotImplementedError

    def train(self) -> Path:
        """Run the remaining steps, evaluate, save the final model; returns its directory."""
        try:
            return self._train()
        finally:
            self.close()
            self.release_run_folder()

    def _train(self) -> Path:
        cfg = self.config.trainer
        self._started = time.perf_counter()
        bar = tqdm(
            range(self.start_step + 1, cfg.steps + 1),
            initial=self.start_step,
            total=cfg.steps,
            desc=self.name,
            disable=not self.is_main,
            mininterval=0.5 if sys.stderr.isatty() else 15.0,
        )
        threads = CPUThreads()
        for step in bar:
            intra_op_threads = threads.adapt()
            started = time.perf_counter()
            metrics = self._mean_over_processes(self.step(step))
            metrics["sec_per_step"] = time.perf_counter() - started
            metrics["time/cpu_threads"] = intra_op_threads
            metrics["lr"] = self.scheduler.get_last_lr()[0]
            if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
                metrics.update(self.evaluate())
            if step % cfg.log_every == 0 or step == cfg.steps:
                self.logger.log(step, metrics)
            bar.set_postfix({k: f"{metrics[k]:.3g}" for k in PROGRESS_KEYS if k in metrics})
            if (cfg.save_every and step % cfg.save_every == 0) or step == cfg.steps:
                self.save_checkpoint(step)
        final = self.finish()
        self.logger.close()
        return final

    def _mean_over_processes(self, metrics: dict[str, float]) -> dict[str, float]:
        """Average each scalar over the data-parallel processes that logged it."""
        if self.accelerator.num_processes == 1:
            return metrics
        from accelerate.utils import gather_object

        per_process = gather_object([metrics])
        keys = sorted({k for m in per_process for k in m})
        return {k: sum(m[k] for m in per_process if k in m) / sum(k in m for m in per_process) for k in keys}

    def evaluate(self) -> dict[str, float]:
        """Greedy accuracy on the held-out records (empty dict when there are none); with frame search on,
        answered by search rollouts."""
        if not self.eval_samples:
            return {}
        search = self._search_eval if self.config.search.enabled else None
        engine = search.engine if search is not None else HFRolloutEngine(self.policy, self.adapter)
        report = evaluate(engine, self.encoder, self.eval_samples, self.config.eval, search=search)
        return {f"eval/{k}": v for k, v in report.summary().items()}

    @functools.cached_property
    def _search_eval(self) -> SearchEval:
        """The search evaluation, built once so its frame and embedding caches serve every evaluation (its engine
        generates with the live policy)."""
        cfg = self.config
        return SearchEval(cfg.search, HFRolloutEngine(self.policy, self.adapter), self.adapter, cfg.eval, cfg.data.video.reader)

    def save_checkpoint(self, step: int) -> None:
        """Process 0 writes the checkpoint; under DeepSpeed every process first adds its optimizer shard."""
        self.accelerator.wait_for_everyone()
        staged = None
        if self.deepspeed:
            staged = staging_dir(self.checkpoint_dir, step, shared=True)
            if self.is_main:
                make_staging_dir(self.checkpoint_dir, step, shared=True)
            self.accelerator.wait_for_everyone()
            self.model.save_checkpoint(str(staged / "deepspeed"), tag=DEEPSPEED_TAG)
            self.accelerator.wait_for_everyone()
        state_dict = self._full_state_dict()
        if self.is_main:
            save_checkpoint(
                self.checkpoint_dir,
                step,
                write_model=lambda path: self.write_model(path, state_dict),
                write_state=self.write_state,
                optimizer=None if self.deepspeed else self.optimizer,
                scheduler=self.scheduler,
                extra={"sampler": self.sampler.state_dict(), "log_lengths": self.logger.sync()},
                keep=self.config.trainer.keep_checkpoints,
                staged=staged,
            )
        self.accelerator.wait_for_everyone()

    def _full_state_dict(self) -> dict[str, torch.Tensor] | None:
        """ZeRO-3 partitions the weights: gather them (on every process) for process 0 to save."""
        if self.zero3:
            return self.accelerator.get_state_dict(self.model)
        return None

    def write_model(self, path: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        self.policy.save_pretrained(path, safe_serialization=True, state_dict=state_dict)
        self.adapter.processor.save_pretrained(path)

    @contextlib.contextmanager
    def micro_batch(self, last: bool):
        """Forward and backward of one micro-batch of a step: gradients add up over the step's
        micro-batches and are synchronised (DDP all-reduce, DeepSpeed reduce and optimizer step)
        only after the `last` one."""
        state = self.accelerator.gradient_state
        state._set_sync_gradients(last)
        try:
            with contextlib.nullcontext() if last else self.accelerator.no_sync(self.model):
                yield
        finally:
            state._set_sync_gradients(True)

    @contextlib.contextmanager
    def whole_models(self):
        """Models loaded inside stay whole on every process. Under ZeRO-3 transformers partitions every
        model it builds (zero.Init), which suits the trained policy but not frozen copies (reference, EMA)."""
        if not self.zero3:
            yield
            return
        from transformers.integrations import unset_hf_deepspeed_config

        unset_hf_deepspeed_config()
        try:
            yield
        finally:
            self.accelerator.state.deepspeed_plugin.set_deepspeed_weakref()

    def clip_and_step(self) -> float:
        """Clip the accumulated gradients to trainer.max_grad_norm, step optimizer and scheduler; the norm.

        Under DeepSpeed the engine already clipped and stepped after the last micro-batch (with the
        same norm, from its config); the calls here are no-ops there and the norm is the engine's.
        """
        max_norm = self.config.trainer.max_grad_norm
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.deepspeed or max_norm > 0:
            norm = self.accelerator.clip_grad_norm_(params, max_norm)
        else:
            norm = torch.norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm) if norm is not None else float("nan")

    def close(self) -> None:
        """Release what the training methods hold open (called when `train` ends, however it ends)."""

    def write_state(self, checkpoint: Path) -> None:
        """Write method-specific state (e.g. an EMA reference) into a checkpoint being assembled."""

    def finish(self) -> Path:
        """Final evaluation (logged) and the final model, LoRA merged, with the run's config beside it."""
        summary = self.evaluate()
        if summary:
            self.logger.log(self.config.trainer.steps, summary)
        final = self.run_dir / "final"
        self.accelerator.wait_for_everyone()
        state_dict = self._full_state_dict()
        if self.is_main:
            model = self.policy
            if hasattr(model, "merge_and_unload"):
                model = model.merge_and_unload()
            model.save_pretrained(final, safe_serialization=True, state_dict=state_dict)
            self.adapter.processor.save_pretrained(final)
            save_config(self.config, final / "vlm_rl.yaml")
            summary = {
                "stage": self.name,
                "steps": self.config.trainer.steps,
                "resumed_from_step": self.start_step,
                "train_wall_time_s": time.perf_counter() - self._started,
                "run_dir": str(self.run_dir),
            }
            (final / "train_summary.json").write_text(json.dumps(summary, indent=1))
        return final


def _process_group_kwargs() -> list:
    """DeepSpeed without CUDA (this project's CPU test machines): accelerate must be told to use gloo,
    or each process believes it trains alone while DeepSpeed averages across them."""
    from accelerate.utils import InitProcessGroupKwargs

    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    return [InitProcessGroupKwargs(backend="gloo")] if deepspeed and not torch.cuda.is_available() else []


DEEPSPEED_TAG = "state"
"""Tag of DeepSpeed's sharded states inside ``<checkpoint>/deepspeed``."""


def _configure_deepspeed(ds: dict, config: RunConfig, world_size: int) -> None:
    """Our loop, not DeepSpeed, splits a step into micro-batches (`Trainer.micro_batch` marks the last),
    so DeepSpeed sees one "batch" per step per process and clips with trainer.max_grad_norm."""
    ds["train_micro_batch_size_per_gpu"] = 1
    ds["gradient_accumulation_steps"] = 1
    ds["train_batch_size"] = world_size
    ds["gradient_clipping"] = config.trainer.max_grad_norm
    ds["zero_allow_untested_optimizer"] = True


def _reload_lora(config: RunConfig, checkpoint: Path):
    from peft import PeftModel

    base = load_model(dataclasses.replace(config.model, lora=dataclasses.replace(config.model.lora, enabled=False)))
    return PeftModel.from_pretrained(base, checkpoint / "model", is_trainable=True)


def _scheduler(config: RunConfig, optimizer: torch.optim.Optimizer, total: int) -> Any:
    from transformers import get_scheduler

    name = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}[config.trainer.lr_scheduler]
    return get_scheduler(name, optimizer, num_warmup_steps=config.trainer.warmup_steps, num_training_steps=total)
