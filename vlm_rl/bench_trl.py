"""The `trl` mode of `vlm-rl bench`: TRL's `GRPOTrainer` on the image workload, as a speed baseline.

It builds the same `small` tiny model and the same records as the other modes (`bench_config`), and
maps that config onto `GRPOConfig`: one prompt x G completions per optimizer step, the same new-token
limit, stop and suppressed tokens, sampling temperature / top-p / top-k, beta, clip range, learning rate (constant, AdamW, no weight
decay), gradient clipping, accuracy + format rewards, float32, no vLLM, no gradient checkpointing. The
processor is set to the workload's image size, and the worker checks that TRL's prompt tokens (the
image placeholders included) are exactly the ones this project's encoder produces.

Step time is measured from `on_step_begin` to `on_step_end` of a `TrainerCallback`: it holds TRL's
generation, rewards, forward, backward, gradient clipping and optimizer step, but not the data loader
fetching the next row (for us: decoding and processing the prompt are inside the step). The phase
columns time the calls themselves: `model.generate` (generation), the two reward functions (rewards),
`trainer.compute_loss` (forward, loss included), `accelerator.backward` (backward) and `optimizer.step`
(between `on_pre_optimizer_step` and `on_optimizer_step`; TRL clips gradients before that, we count
clipping in our optimizer phase). TRL runs no separate log-prob pass at these settings (beta 0, one
update per batch), so that column is reported as not measured (None). TRL cannot train on video: it
passes the frames to `generate` but not to the loss forward, so the loss sees the video placeholders as text.

`trl` is imported only here; install it with `pip install -e ".[bench]"`.
"""

from __future__ import annotations

import importlib.util
import statistics
import tempfile
import time
from pathlib import Path

from vlm_rl.config import ConfigError

TRL_WORKLOADS = ("image",)
"""Workloads TRL trains on correctly (images only)."""


def check_trl(workload_name: str) -> None:
    """ConfigError unless TRL is installed and `workload_name` is one it trains on correctly."""
    if workload_name not in TRL_WORKLOADS:
        raise ConfigError(
            f"--mode trl runs only on the image workload, not {workload_name!r}: TRL's GRPOTrainer gives video frames "
            "to generation but not to the loss forward, so it would train on the wrong input"
        )
    if importlib.util.find_spec("trl") is None:
        raise ConfigError('--mode trl needs TRL: pip install -e ".[bench]"')


def grpo_config_kwargs(config, out_dir: Path) -> dict:
    """`trl.GRPOConfig` keyword arguments equal to the settings of our GRPO run `config`."""
    algo, rollout, trainer = config.algo, config.rollout, config.trainer
    # settings that have no TRL counterpart in this mapping must stay at the values it assumes
    loss = (algo.policy_loss, algo.advantage, algo.std_mode, algo.aggregation)
    if loss != ("clipped_surrogate", "grpo", "group", "seq_mean_token_mean"):
        raise ConfigError("the TRL baseline maps only the clipped GRPO loss, group-std advantages and per-sequence token means")
    if trainer.warmup_steps or trainer.lr_scheduler != "constant" or trainer.micro_batch_prompts != trainer.prompts_per_step:
        raise ConfigError("the TRL baseline maps only a constant learning rate and one micro-batch per step")
    completions = trainer.prompts_per_step * rollout.num_generations
    return {
        "output_dir": str(out_dir),
        "seed": config.seed,
        "max_steps": trainer.steps,
        "per_device_train_batch_size": completions,
        "gradient_accumulation_steps": 1,
        "num_generations": rollout.num_generations,
        "max_completion_length": rollout.max_new_tokens,
        "temperature": rollout.temperature,
        "top_p": rollout.top_p,
        "top_k": rollout.top_k,
        "beta": algo.beta,
        "num_iterations": algo.num_iterations,
        "epsilon": algo.clip_low,
        "epsilon_high": algo.clip_high,
        "loss_type": "grpo",  # per-sequence mean of token losses, then the batch mean: our seq_mean_token_mean
        "scale_rewards": "group" if algo.advantage == "grpo" else "none",
        "mask_truncated_completions": algo.mask_truncated,
        "reward_weights": [config.reward.weights[name] for name in ("accuracy", "format")],
        "learning_rate": trainer.lr,
        "lr_scheduler_type": "constant",
        "weight_decay": trainer.weight_decay,
        "max_grad_norm": trainer.max_grad_norm,
        "optim": "adamw_torch",
        "bf16": False,
        "fp16": False,
        "activation_checkpointing": config.model.gradient_checkpointing,  # TRL's default is on
        "use_vllm": False,
        "use_cpu": not _cuda(),
        "logging_steps": 1,
        "report_to": "none",
        "save_strategy": "no",
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }


def run_trl(workload_name: str, steps: int, warmup: int, seed: int = 0) -> dict[str, float | None]:
    """Train `warmup + steps` TRL GRPO steps in this process; medians of the timed steps and the peak memory."""
    check_trl(workload_name)
    from vlm_rl.bench import PHASES, WORKLOADS, _peak_mib, bench_config
    from vlm_rl.training.timing import PhaseTimer

    workload = WORKLOADS[workload_name]
    timer = PhaseTimer()
    times = _step_times(timer)
    with tempfile.TemporaryDirectory(prefix="vlm-rl-bench-trl-") as tmp:
        root = Path(tmp)
        config = bench_config(root, workload_name, "shared", steps, warmup, seed)
        trainer, prompt_tokens, image_tokens = _trainer(config, root / "trl", timer)
        trainer.add_callback(times)
        before_train = _peak_mib()
        trainer.train()
    result: dict[str, float | None] = {"step": statistics.median(times.steps[warmup:])}
    for phase in PHASES:
        values = [p[phase] for p in times.phases[warmup:] if phase in p]
        result[phase] = statistics.median(values) if values else None
    result["samples_per_s"] = workload.prompts_per_step * workload.num_generations / result["step"]
    result["peak_mib"] = _peak_mib()
    result["before_train_mib"] = before_train
    result["completion_length"] = statistics.median(log["completions/mean_length"] for log in times.logs[warmup:])
    result["prompt_tokens"], result["image_tokens"] = prompt_tokens, image_tokens
    return result


def _trainer(config, out_dir: Path, timer):
    """TRL's GRPOTrainer for `config`, its calls timed into `timer`; also the first prompt's token and image-token counts."""
    from trl import GRPOConfig, GRPOTrainer

    from vlm_rl.models.loading import load_adapter, load_model

    adapter = load_adapter(config.model.path)
    # TRL runs the processor's own resize: give it the workload's image size (ours is set by data.image)
    adapter.processor.image_processor.size = {
        "shortest_edge": config.data.image.min_pixels, "longest_edge": config.data.image.max_pixels,
    }
    dataset, prompt_tokens, image_tokens = _dataset(config, adapter)
    model = load_model(config.model)
    # stop and suppress the tokens our rollout engine does (TRL: the model's eos only, and <|image_pad|>)
    model.generation_config.eos_token_id = list(adapter.eos_token_ids)
    generation_kwargs = {"suppress_tokens": list(adapter.blocked_token_ids)}
    model.generate = _timed(timer, "generation", model.generate)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=_reward_funcs(timer),
        args=GRPOConfig(**grpo_config_kwargs(config, out_dir), generation_kwargs=generation_kwargs),
        train_dataset=dataset,
        processing_class=adapter.processor,
    )
    trainer.compute_loss = _timed(timer, "forward", trainer.compute_loss)
    trainer.accelerator.backward = _timed(timer, "backward", trainer.accelerator.backward)
    return trainer, prompt_tokens, image_tokens


def _dataset(config, adapter):
    """The training records as a TRL conversational dataset; checks that TRL tokenizes each prompt as we do.

    Returns the dataset, and the prompt length and image-placeholder count of the first record.
    """
    from datasets import Dataset
    from trl.data_utils import prepare_multimodal_messages

    from data_pipelines.prompts import build_prompt_text
    from vlm_rl.models.prompt_encoder import PromptEncoder
    from vlm_rl.records import load_records

    encoder = PromptEncoder(adapter, config.data)
    rows, first = [], None
    for sample in load_records(config.data.train_files, config.data.media_root):
        image = encoder.frames.get_image(sample.media_path, encoder.image_sampling)
        prompt = [{"role": "user", "content": build_prompt_text(sample, config.data.prompt_template)}]
        theirs = adapter.processor.apply_chat_template(
            [prepare_multimodal_messages(prompt, images=[image])], add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"][0]
        ours = encoder.encode(sample).input_ids.tolist()
        if list(theirs) != ours:
            raise RuntimeError(f"TRL's prompt tokens differ from ours for {sample.origin}: {len(theirs)} vs {len(ours)} tokens")
        if first is None:
            first = (len(ours), ours.count(adapter.image_token_id))
        rows.append({"prompt": prompt, "image": image, "solution": sample.solution, "problem_type": sample.problem_type})
    return Dataset.from_list(rows), *first


def _reward_funcs(timer):
    """Our accuracy and format rewards in TRL's reward-function form (one float per completion)."""
    from vlm_rl.rewards import accuracy_reward, format_reward

    def text(completion) -> str:
        return completion[-1]["content"] if isinstance(completion, list) else completion

    def accuracy(completions, solution, problem_type, **_) -> list[float]:
        with timer("rewards"):
            return [accuracy_reward(text(c), s, p) for c, s, p in zip(completions, solution, problem_type, strict=True)]

    def format_(completions, **_) -> list[float]:
        with timer("rewards"):
            return [format_reward(text(c)) for c in completions]

    return [accuracy, format_]


def _timed(timer, phase: str, fn):
    """`fn` with each call's wall time added to `timer`'s `phase`."""

    def wrapper(*args, **kwargs):
        with timer(phase):
            return fn(*args, **kwargs)

    return wrapper


def _step_times(timer):
    """A TrainerCallback recording each step's wall time, its phase times and TRL's logged metrics."""
    from transformers import TrainerCallback

    class StepTimes(TrainerCallback):
        def __init__(self) -> None:
            self.steps: list[float] = []
            self.phases: list[dict[str, float]] = []
            self.logs: list[dict[str, float]] = []
            self._started = self._optimizer = None

        def on_step_begin(self, args, state, control, **kwargs):
            timer.pop()
            self._started = time.perf_counter()

        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            self._optimizer = timer("optimizer")
            self._optimizer.__enter__()

        def on_optimizer_step(self, args, state, control, **kwargs):
            self._optimizer.__exit__(None, None, None)

        def on_step_end(self, args, state, control, **kwargs):
            self.steps.append(time.perf_counter() - self._started)
            self.phases.append({k.removeprefix("time/"): v for k, v in timer.pop().items()})

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "completions/mean_length" in logs:
                self.logs.append(dict(logs))

    return StepTimes()


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
