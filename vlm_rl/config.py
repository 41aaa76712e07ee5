"""One typed config tree: YAML files plus dotted command-line overrides, validated on load.

Every field carries a one-line help (``field(metadata={"help": ...})``); `describe()` prints them. Every
numeric field also declares the values it accepts (``_f(..., ge=1)``), checked on load. Unknown keys, wrong
types and out-of-range values are refused with a message that names the dotted key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key and what to change."""


@dataclass(frozen=True)
class Range:
    """The values a numeric field accepts: a lower and an upper limit, each inclusive or exclusive, or absent.

    Non-finite numbers (nan, inf) are never accepted. `why` explains a limit that is not obvious.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    why: str = ""

    def __contains__(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return not (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )

    def __str__(self) -> str:
        low = f"[{self.ge}" if self.ge is not None else f"({self.gt}" if self.gt is not None else None
        high = f"{self.le}]" if self.le is not None else f"{self.lt})" if self.lt is not None else None
        if low and high:
            return f"{low}, {high}"
        if low:
            return f">= {self.ge}" if self.ge is not None else f"> {self.gt}"
        return f"<= {self.le}" if self.le is not None else f"< {self.lt}"


def _f(
    default: Any,
    help: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    why: str = "",
) -> Any:
    """A config field with its help; numeric fields give their allowed range (ge/gt/le/lt, `why` if not obvious)."""
    metadata: dict[str, Any] = {"help": help}
    if (ge, gt, le, lt) != (None, None, None, None):
        metadata["range"] = Range(ge, gt, le, lt, why)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _sub(cls: type, help: str) -> Any:
    return field(default_factory=cls, metadata={"help": help})


@dataclass
class LoraConfig:
    enabled: bool = _f(False, "Train LoRA adapters (peft) instead of all weights.")
    r: int = _f(16, "LoRA rank.", ge=1)
    alpha: int = _f(32, "LoRA alpha (scaling = alpha / r).", ge=1)
    dropout: float = _f(0.0, "LoRA dropout.", ge=0, lt=1)
    target_modules: list[str] = _f(
        ["q_proj", "k_proj", "v_proj", "o_proj"], "Module names of the language model that get adapters."
    )


@dataclass
class ModelConfig:
    path: str = _f("", "A local directory loadable by transformers (Qwen2.5-VL / Qwen2-VL) or a hub id on a networked machine.")
    dtype: Literal["float32", "bfloat16", "float16"] = _f("float32", "Parameter dtype for training and rollout.")
    attn_implementation: str = _f("sdpa", "Attention kernel: sdpa, eager, or flash_attention_2 (GPU, extra 'gpu').")
    freeze_vision: bool = _f(False, "Freeze the vision tower (its parameters get no gradient).")
    gradient_checkpointing: bool = _f(False, "Recompute activations in the backward pass to save memory (transformers activation checkpointing).")
    shared_prefix: bool = _f(
        True,
        "Loss forward: compute each group's prompt and frames once and share them with its G completions (same "
        "numbers as repeating them; off = the repeated form). With gradient checkpointing the completions' layers are "
        "recomputed in the backward and the prompt, run once per group, keeps its activations.",
    )
    lora: LoraConfig = _sub(LoraConfig, "LoRA settings.")


@dataclass
class VideoConfig:
    fps: float | None = _f(2.0, "Frames sampled per second of video (qwen-vl-utils 'fps'); exclusive with nframes.", gt=0)
    nframes: int | None = _f(
        None,
        "Fixed number of frames per video (qwen-vl-utils 'nframes'); exclusive with fps.",
        ge=2,
        why="qwen-vl-utils samples frames in pairs",
    )
    min_frames: int = _f(4, "Lower bound on frames when sampling by fps.", ge=1)
    max_frames: int = _f(
        16,
        "Upper bound on frames when sampling by fps (Video-R1 trains with 16).",
        ge=2,
        why="qwen-vl-utils samples frames in pairs",
    )
    min_pixels: int = _f(128 * 28 * 28, "Minimum pixels per frame; smaller videos are upscaled (qwen-vl-utils).", ge=1)
    max_pixels: int = _f(128 * 28 * 28, "Maximum pixels per frame (Video-R1 trains with 128*28*28).", ge=1)
    total_pixels: int = _f(90316800, "Pixel budget over all frames of one video (qwen-vl-utils VIDEO_TOTAL_PIXELS).", ge=1)
    reader: Literal["auto", "decord", "pyav"] = _f("auto", "Video decoder: decord, pyav, or auto (decord, else PyAV). Never torchvision.")


@dataclass
class ImageConfig:
    min_pixels: int = _f(4 * 28 * 28, "Minimum pixels per image.", ge=1)
    max_pixels: int = _f(256 * 28 * 28, "Maximum pixels per image (Video-R1 uses 256*28*28).", ge=1)


@dataclass
class DataConfig:
    train_files: list[str] = _f(
        [],
        "Training records: .json/.jsonl files of any shape the readers detect (Video-R1/TW-GRPO, SEED-Bench-R1, MMVU, "
        "TimeSearch-R, VLM-R1, chat messages), or Hugging Face datasets (.parquet/.arrow files, dataset folders, PATH@SPLIT).",
    )
    eval_files: list[str] = _f([], "Held-out records evaluated during and after training.")
    media_root: str | None = _f(None, "Directory that record media paths are relative to (default: each file's directory).")
    prompt_template: Literal[
        "video_r1_train", "video_r1_eval", "short", "mmvu_cot", "mmvu_direct", "timesearch", "timesearch_short"
    ] = _f(
        "video_r1_train",
        "Question template: Video-R1's training or evaluation wording (also SEED-Bench-R1's), 'short' for tiny "
        "models, MMVU's official chain-of-thought / direct-answer prompts, or the frame-search prompt (timesearch, "
        "with the tool in the system turn; timesearch_short for tiny models).",
    )
    system_prompt: str | None = _f(None, "System turn; None keeps the chat template's default.")
    prompt_key: str = _f("prompt", "Hugging Face datasets (parquet, arrow or a saved dataset folder): the question column (EasyR1's data.prompt_key).")
    answer_key: str = _f("answer", "Hugging Face datasets: the ground-truth column (EasyR1's data.answer_key).")
    image_key: str = _f("images", "Hugging Face datasets: the image column, bytes or paths (EasyR1's data.image_key).")
    video_key: str = _f("videos", "Hugging Face datasets: the video column, paths (EasyR1's data.video_key).")
    shuffle: bool = _f(True, "Shuffle training records each epoch (seeded).")
    limit: int | None = _f(None, "Use only the first N records of the training files.", ge=1)
    prompt_cache_mb: int = _f(
        2048,
        "Memory for processed prompts (pixel values, token ids) reused across steps and epochs (0 = process every time).",
        ge=0,
    )
    frame_cache_mb: int = _f(
        2048, "Memory for decoded, resized frames and images reused across steps (0 = decode every time).", ge=0
    )
    video: VideoConfig = _sub(VideoConfig, "Video frame sampling (qwen-vl-utils semantics, per-record overrides win).")
    image: ImageConfig = _sub(ImageConfig, "Image resizing.")


@dataclass
class VLLMConfig:
    gpu_memory_utilization: float = _f(
        0.3,
        "Fraction of GPU memory vLLM may take (colocated: leave the rest to training; a serve-only GPU: 0.9).",
        gt=0,
        le=1,
    )
    tensor_parallel_size: int = _f(1, "GPUs one vLLM engine spans.", ge=1)
    max_model_len: int | None = _f(None, "Longest prompt + completion in tokens (None = the model's limit).", ge=1)
    dtype: str = _f("bfloat16", "Weight and activation dtype inside vLLM.")
    sleep: bool = _f(True, "Colocated: release vLLM's GPU memory (weights to CPU, KV cache freed) outside generation.")
    server_url: str = _f("http://127.0.0.1:8000", "Engine vllm-server: base URL of `vlm-rl vllm-serve`.")
    timeout_s: float = _f(600.0, "Engine vllm-server: seconds one HTTP request may take.", gt=0)
    sync_chunk_mb: int = _f(512, "Engine vllm-server: weights are pushed in pieces of at most this many MiB.", ge=1)
    token_file: str | None = _f(
        None,
        "Engine vllm-server and `vlm-rl vllm-serve`: file holding the server's token (one line; chmod 600 it); "
        "None = the VLM_RL_SERVER_TOKEN environment variable; neither = no token (keep the server on loopback).",
    )
    max_body_mb: int | None = _f(
        None,
        "`vlm-rl vllm-serve`: largest request body in MiB; a larger one gets 413 unread (None = sync_chunk_mb + "
        "1536, room for one tensor bigger than a piece, such as a 7B model's 1 GiB embedding).",
        ge=1,
    )


@dataclass
class RolloutConfig:
    engine: Literal["hf", "vllm", "vllm-server"] = _f(
        "hf",
        "Rollout engine: hf (transformers generate; CPU or GPU), vllm (vLLM inside each training process, weights "
        "synced after every optimizer step; CUDA), vllm-server (a `vlm-rl vllm-serve` on other GPUs, weights pushed "
        "over HTTP).",
    )
    vllm: VLLMConfig = _sub(VLLMConfig, "vLLM engine settings (engine vllm or vllm-server).")
    num_generations: int = _f(
        8,
        "Group size G: completions sampled per prompt.",
        ge=2,
        why="a group of one completion has zero advantage, so GRPO trains with zero gradients",
    )
    max_new_tokens: int = _f(256, "Longest completion; longer ones are cut and marked truncated.", ge=1)
    temperature: float = _f(1.0, "Sampling temperature (0 = greedy).", ge=0)
    top_p: float = _f(1.0, "Nucleus sampling threshold.", gt=0, le=1)
    top_k: int = _f(0, "Top-k sampling (0 = off; HF's implicit default is 50).", ge=0)
    shared_prefill: bool = _f(
        True,
        "hf engine: run each prompt (text and frames) once, the prompts of a call batched, and share its cache with "
        "its G samples (greedy output identical; off = transformers generate on the G-times repeated prompts). The "
        "vllm engine ignores it: vLLM shares prompt prefixes itself (prefix caching).",
    )


@dataclass
class RewardConfig:
    weights: dict[str, float] = _f(
        {"accuracy": 1.0, "format": 1.0}, "Reward name -> weight; the total is the weighted sum (Video-R1: accuracy + format)."
    )
    custom: dict[str, str] = _f({}, "Extra reward name -> 'package.module:function' or 'path/to/rewards.py:function' taking a RewardContext.")


@dataclass
class RegGRPOConfig:
    def check(self, run: RunConfig) -> None:
        algo = run.algo
        if algo.policy_loss != "reg_grpo":
            return
        if algo.replay.enabled:
            raise ConfigError(
                "algo.policy_loss=reg_grpo regresses within groups, and replayed rollouts have no group; "
                "set algo.replay.enabled=false"
            )
        if algo.token_weighting != "none" or algo.mask_truncated:
            raise ConfigError(
                "algo.policy_loss=reg_grpo regresses whole-sequence log-ratios: it takes no token weighting and "
                "no overlong masking; set algo.token_weighting=none and algo.mask_truncated=false"
            )

    onpolicy_eps: float = _f(
        1.0,
        "Variance floor of the log-ratio z-score in the first, on-policy update of each rollout batch, where the "
        "log-ratio is identically 0; that update is REINFORCE-like with scale 1/sqrt(onpolicy_eps).",
        gt=0,
        why="the first update of each rollout batch is on-policy, where the Reg-GRPO log-ratio is identically 0 and "
        "the loss has no gradient without it",
    )
    unbiased_std: bool = _f(False, "Divide both z-scores by G-1 instead of G (the paper does not say which).")


@dataclass
class CareConfig:
    enabled: bool = _f(False, "GRPO-CARE consistency bonus from an EMA reference model (use with beta 0).")
    margin: float = _f(0.0, "Consistency margin epsilon_p (0 for SEED-Bench-R1, 0.01 for general data).", ge=0)
    bonus_coefficient: float = _f(0.5, "lambda_cons: the bonus is lambda_cons * accuracy (the scripts use 0.5).", ge=0)
    confidence_upper_bound: float = _f(0.95, "Clip gamma_p of the reference answer likelihood.", ge=0, le=1)
    min_accuracy: float = _f(0.1, "gamma_acc: only completions with accuracy above this can get the bonus.", ge=0, le=1)
    ema_decay: float = _f(0.995, "EMA decay alpha of the reference: phi <- alpha * phi + (1 - alpha) * theta.", ge=0, le=1)
    ema_every: int = _f(10, "Update the EMA reference after every N-th optimizer step.", ge=1)

    def check(self, run: RunConfig) -> None:
        if not self.enabled:
            return
        _needs_accuracy(run, "algo.care.enabled")


@dataclass
class TemporalConfig:
    enabled: bool = _f(False, "T-GRPO (Video-R1): bonus when accuracy on ordered frames beats accuracy on shuffled frames.")
    num_shuffled: int = _f(0, "Completions sampled per video prompt on shuffled frames (0 = G // 2, as Video-R1).", ge=0)
    mu: float = _f(0.8, "The bonus is given when ordered accuracy >= mu * shuffled accuracy.", ge=0)
    bonus: float = _f(0.3, "Added to each qualifying ordered completion's reward.", ge=0)
    min_accuracy: float = _f(0.1, "Only completions with accuracy above this get the bonus.", ge=0, le=1)

    def check(self, run: RunConfig) -> None:
        if self.enabled:
            _needs_accuracy(run, "algo.temporal.enabled")


@dataclass
class ReplayConfig:
    enabled: bool = _f(
        False, "VL-Rethinker selective sample replay: rows of groups whose advantages vanish are replaced by replayed rollouts."
    )
    capacity: int = _f(0, "Rollouts kept (FIFO); 0 = half of one step's rollouts, as the official code.", ge=0)
    alpha: float = _f(1.0, "Replay priority |advantage|**alpha (+1e-4); 0 = uniform.", ge=0)


@dataclass
class RethinkConfig:
    enabled: bool = _f(False, "VL-Rethinker forced rethinking: continue some rollouts after a 'Wait' trigger; correct ones replace them.")
    skip_probability: float = _f(0.35, "Chance that an otherwise eligible rollout gets no rethinking attempt.", ge=0, le=1)
    group_accuracy_threshold: float = _f(
        0.7, "Incorrect rollouts of groups more accurate than this are not rethought.", ge=0, le=1
    )
    truncate_probability: float = _f(
        0.5, "Chance that the first pass is cut before its answer before the trigger.", ge=0, le=1
    )
    max_kept_per_query: int = _f(2, "At most this many rethought rollouts replace first passes in one group.", ge=1)
    min_new_tokens: int = _f(30, "A kept continuation has more new tokens than this (exclusive).", ge=0)
    max_new_tokens: int = _f(1024, "... and fewer than this (exclusive); also the continuation's generation limit.", ge=1)
    max_rethink_words: int = _f(
        4, "A kept continuation has 1 + its count of 'wait,', 'wait a', 'alternatively' at most this.", ge=1
    )
    max_first_pass_tokens: int = _f(
        1024, "First passes longer than this are not rethought (the code's max_tokens - 1024).", ge=1
    )
    temperature: float = _f(0.9, "Sampling temperature of the continuation.", ge=0)

    def check(self, run: RunConfig) -> None:
        if self.min_new_tokens >= self.max_new_tokens:
            raise ConfigError("algo.rethink.min_new_tokens must be smaller than algo.rethink.max_new_tokens")
        if self.enabled:
            _needs_accuracy(run, "algo.rethink.enabled")


@dataclass
class DifficultyConfig:
    enabled: bool = _f(
        False, "DeepVideo-R1 difficulty-aware augmentation: re-roll vanished groups with hints (hard) or frame noise (easy)."
    )
    window: int = _f(100, "Recent groups whose mean reward is the difficulty reference (the paper's W = 100).", ge=1)
    std_threshold: float = _f(0.0, "Augment only groups whose reward std is at most this (0 = vanishing advantage).", ge=0)
    noise_sigma0: float = _f(
        0.05, "Base std of the frame noise on [0, 1] pixels; the noise std is (|delta| + 1) * sigma0.", gt=0
    )
    guided_traces: int = _f(4, "Traces generated with the answer visible; the best-rewarded one gives the hint.", ge=1)


@dataclass
class TWGRPOConfig:
    alpha: float = _f(
        1.7,
        "Largest token weight (weights lie in [1, alpha]); the official scripts use 1.7.",
        ge=1,
        why="the weights lie in [1, alpha]",
    )
    chunk: int = _f(0, "Positions per chunk when computing the weights (0 = all at once, exact form).", ge=0)


@dataclass
class SynConfig:
    enabled: bool = _f(
        False,
        "Syn-GRPO (a reconstruction): the policy describes new scenes for perception samples, vlm-rl synth-server draws "
        "them, the synthesised samples join training, and each description is rewarded by its sample's diversity.",
    )
    server: str = _f("http://127.0.0.1:8100", "URL of the running vlm-rl synth-server.")
    token_file: str | None = _f(None, "File holding the server's token (else $VLM_RL_SYNTH_TOKEN; neither = no token).")
    images: Literal["inline", "path"] = _f(
        "inline", "Finished images come in the server's answer (inline) or are read from its workdir (path: same machine only)."
    )
    sources_per_step: int = _f(
        1, "Perception samples per step whose new scenes the policy describes, G (rollout.num_generations) times each.", ge=0
    )
    description_max_tokens: int = _f(48, "Longest scene description, in tokens.", ge=1)
    mix: float = _f(
        0.5, "Share of each sampling round's prompts taken from the synthesised samples that are ready (rounded down).", ge=0, le=1
    )
    max_pending: int = _f(
        64, "Descriptions waiting for their reward at most (new ones are written only while fewer undrawn ones wait than a step takes).", ge=1
    )
    expiry_steps: int = _f(8, "A description still without its reward this many steps after it was written is dropped.", ge=1)
    diversity_reward: str = _f(
        "accuracy", "Reward whose variance over a group is the group's diversity (the paper uses accuracy; iou also fits)."
    )
    baseline_momentum: float = _f(0.9, "Momentum of the moving average of diversity that a description's reward is measured against.", ge=0, lt=1)
    baseline_groups: Literal["all", "synthetic"] = _f(
        "all", "Groups whose diversity moves the baseline: every group of a round, or only the synthesised ones."
    )
    reward_scale: float = _f(
        4.0, "A description's advantage is this times (its sample's diversity - baseline); 4 maps 0.25, the most a 0/1 reward "
        "spreads, to 1.", gt=0,
    )
    wait_s: float = _f(
        0.0,
        "Longest a round waits for the synthesised samples it would take (0 = never wait; > 0 makes a run repeatable while "
        "the server keeps up).",
        ge=0,
        le=600,
    )
    poll_s: float = _f(0.2, "Seconds between the client's polls of the server.", gt=0, le=60)

    def check(self, run: RunConfig) -> None:
        if not self.enabled:
            return
        if self.diversity_reward not in run.reward.weights:
            raise ConfigError(
                f"algo.syn.diversity_reward={self.diversity_reward!r} is not in reward.weights; add it there "
                "(weight 0 keeps it out of the total) or name one that is"
            )
        for other, on in (("algo.replay.enabled", run.algo.replay.enabled), ("search.enabled", run.search.enabled)):
            if on:
                raise ConfigError(f"algo.syn.enabled cannot be combined with {other} yet; turn one of them off")


@dataclass
class AlgoConfig:
    advantage: str = _f("grpo", "Advantage estimator: grpo (group mean/std, DeepSeekMath) or dr_grpo (mean only, Dr.GRPO).")
    std_mode: Literal["group", "batch"] = _f("group", "grpo advantage: std over each group or over the whole batch.")
    policy_loss: str = _f(
        "clipped_surrogate", "Loss: clipped_surrogate (PPO/GRPO), gspo (sequence-level ratio) or reg_grpo (Reg-GRPO regression)."
    )
    clip_low: float = _f(0.2, "Lower clip epsilon of the ratio.", ge=0, le=1)
    clip_high: float = _f(0.2, "Upper clip epsilon (DAPO clip-higher uses 0.28).", ge=0)
    clip_ratio_c: float | None = _f(
        None,
        "Dual clip (verl): the policy loss of a negative-advantage token is at most -A * c; c > 1, null = off (verl uses 3).",
        gt=1,
    )
    beta: float = _f(0.0, "KL coefficient to the reference model; 0 loads no reference model.", ge=0)
    kl_estimator: Literal["k1", "k2", "k3"] = _f("k3", "Per-token KL estimator (Schulman).")
    kl_clamp: float | None = _f(
        None,
        "Clamp of log(pi_ref/pi) before the KL estimator (null = +-20; GRPO-CARE uses 10); k3 is capped at 10 either way.",
        gt=0,
    )
    aggregation: Literal["seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm"] = _f(
        "seq_mean_token_mean", "Loss aggregation: GRPO per-sequence mean, DAPO token mean, or Dr.GRPO constant normaliser."
    )
    num_iterations: int = _f(1, "Optimizer updates per rollout batch (mu); >1 keeps the old log-probs.", ge=1)
    token_weighting: str = _f(
        "none", "Per-token loss weights: none, or tw_grpo = TW-GRPO intra-group divergence weights (use with aggregation=token_mean)."
    )
    tw_grpo: TWGRPOConfig = _sub(TWGRPOConfig, "TW-GRPO token weights (algo.token_weighting=tw_grpo).")
    mask_truncated: bool = _f(False, "Overlong masking (DAPO): completions cut at max_new_tokens get no loss.")
    dynamic_sampling: bool = _f(
        False, "Dynamic sampling (DAPO): drop groups whose rewards all agree and sample new prompts to refill the batch."
    )
    dynamic_sampling_max_rounds: int = _f(
        3, "Extra sampling rounds to refill the batch before training on fewer groups.", ge=0
    )
    reg_grpo: RegGRPOConfig = _sub(RegGRPOConfig, "Reg-GRPO (DeepVideo-R1), used with policy_loss=reg_grpo.")
    care: CareConfig = _sub(CareConfig, "GRPO-CARE consistency bonus.")
    temporal: TemporalConfig = _sub(TemporalConfig, "T-GRPO temporal contrast bonus (video prompts only).")
    replay: ReplayConfig = _sub(ReplayConfig, "VL-Rethinker selective sample replay (SSR).")
    rethink: RethinkConfig = _sub(RethinkConfig, "VL-Rethinker forced rethinking.")
    difficulty: DifficultyConfig = _sub(DifficultyConfig, "DeepVideo-R1 difficulty-aware augmentation.")
    syn: SynConfig = _sub(SynConfig, "Syn-GRPO scene synthesis and the diversity reward (needs vlm-rl synth-server).")


@dataclass
class WandbConfig:
    project: str = _f("vlm-rl", "Weights & Biases project.")
    name: str | None = _f(None, "Run name (default: the output_dir's folder name).")
    entity: str | None = _f(None, "Team or user (default: yours).")
    tags: list[str] = _f([], "Run tags.")


@dataclass
class TrainerConfig:
    steps: int = _f(100, "Training steps (each: one rollout batch, num_iterations updates).", ge=1)
    prompts_per_step: int = _f(4, "Prompts per step on each process (each sampled G times for GRPO).", ge=1)
    micro_batch_prompts: int = _f(4, "Prompts per forward/backward; the step accumulates over micro-batches.", ge=1)
    lr: float = _f(1e-6, "Peak learning rate (AdamW).", gt=0)
    weight_decay: float = _f(0.0, "AdamW weight decay.", ge=0)
    warmup_steps: int = _f(0, "Linear warm-up steps.", ge=0)
    lr_scheduler: Literal["constant", "linear", "cosine"] = _f("constant", "Schedule after warm-up.")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm (0 = off).", ge=0)
    log_every: int = _f(1, "Log metrics every N steps.", ge=1)
    report_to: list[Literal["tensorboard", "wandb", "none"]] = _f(
        ["tensorboard"], "Where metrics go besides metrics.jsonl: tensorboard, wandb (offline with WANDB_MODE=offline), none."
    )
    wandb: WandbConfig = _sub(WandbConfig, "Weights & Biases run settings (trainer.report_to includes wandb).")
    sample_every: int = _f(10, "Log sample completions every N steps (0 = never).", ge=0)
    eval_every: int = _f(0, "Evaluate on data.eval_files every N steps (0 = only at the end).", ge=0)
    eval_limit: int | None = _f(None, "Evaluate on at most N held-out records.", ge=1)
    save_every: int = _f(0, "Write a checkpoint every N steps (0 = only at the end).", ge=0)
    keep_checkpoints: int = _f(2, "Checkpoints kept on disk (oldest are deleted).", ge=1)
    resume: str = _f(
        "none",
        "'auto' continues from the newest good checkpoint (damaged ones are skipped with a message), 'none' starts "
        "fresh (refused where output_dir holds a run, unless trainer.overwrite), or a checkpoint path.",
    )
    overwrite: bool = _f(
        False, "A fresh run (resume=none) into an output_dir that holds a run removes that run's files first; off = refuse."
    )


@dataclass
class EvalConfig:
    max_new_tokens: int = _f(256, "Longest answer in evaluation.", ge=1)
    temperature: float = _f(0.0, "0 = greedy decoding; >0 samples.", ge=0)
    top_p: float = _f(1.0, "Nucleus threshold when sampling.", gt=0, le=1)
    batch_size: int = _f(16, "Prompts per generate call.", ge=1)
    mc_mode: Literal["strict", "lenient"] = _f("strict", "Multiple-choice scoring: exact letter (GRPO-CARE) or first letter.")
    engine: Literal["hf", "vllm"] = _f(
        "hf", "`vlm-rl eval` generation: hf (transformers) or vllm (CUDA; settings from rollout.vllm; raise batch_size)."
    )


SEARCH_TEMPLATES = ("timesearch", "timesearch_short")
"""The prompt templates that describe the frame-search tool."""


@dataclass
class SearchConfig:
    enabled: bool = _f(
        False,
        "TimeSearch-R frame search: rollouts alternate model turns and seek_video_frames tool turns over a preview "
        "video (needs data.prompt_template=timesearch).",
    )
    max_turns: int = _f(8, "Model turns per rollout (the official RL setting; 10 at inference).", ge=1, le=64)
    max_turn_tokens: int = _f(256, "Longest model turn in tokens (the official RL setting; 512 at inference).", ge=1)
    cache_fps: float = _f(2.0, "Frames per second of the per-video frame cache the tool selects from.", gt=0)
    max_cache_frames: int = _f(2048, "Most frames in one video's cache (longer videos are subsampled uniformly).", ge=1)
    frame_min_pixels: int = _f(32 * 28 * 28, "Smallest area of a cached frame (the official 32 tokens).", ge=1)
    frame_max_pixels: int = _f(256 * 28 * 28, "Largest area of a cached frame (the official 256 tokens).", ge=1)
    cache_mb: int = _f(1024, "Memory for decoded cache frames over all videos (LRU).", ge=0)
    scorer: Literal["colors", "siglip"] = _f(
        "colors", "Frame relevance: colors (built in, for the synthetic videos) or siglip (a SigLIP/CLIP checkpoint)."
    )
    scorer_path: str | None = _f(None, "search.scorer=siglip: a local SigLIP or CLIP checkpoint directory.")
    csv: bool = _f(True, "GRPO-CSV: verify each rollout by answering again from its retrieved frames alone.")
    csv_weight: float = _f(0.5, "Weight of the completeness term in the reward (the official v7 weight).", ge=0)
    verify_max_tokens: int = _f(256, "Longest verification answer in tokens.", ge=1)
    placeholder_result: bool = _f(
        False,
        "Append one frame (query 'any', 0-3600 s) as a tool result to rollouts that never searched, so every rank runs "
        "the vision tower (needed under ZeRO-3; the official training setting).",
    )

    def check(self, run: RunConfig) -> None:
        if not self.enabled:
            return
        if run.data.prompt_template not in SEARCH_TEMPLATES:
            raise ConfigError(
                f"search.enabled needs data.prompt_template {' or '.join(SEARCH_TEMPLATES)} (a prompt that describes the tool)"
            )
        if self.scorer == "siglip" and not self.scorer_path:
            raise ConfigError("search.scorer=siglip needs search.scorer_path: a local SigLIP or CLIP checkpoint directory")
        if self.frame_min_pixels > self.frame_max_pixels:
            raise ConfigError("search.frame_min_pixels must not exceed search.frame_max_pixels")
        for key, enabled in (
            ("algo.rethink.enabled", run.algo.rethink.enabled),
            ("algo.temporal.enabled", run.algo.temporal.enabled),
            ("algo.difficulty.enabled", run.algo.difficulty.enabled),
            ("algo.care.enabled", run.algo.care.enabled),
            ("algo.replay.enabled", run.algo.replay.enabled),
        ):
            if enabled:
                raise ConfigError(f"search.enabled does not combine with {key} yet; turn one of them off")


@dataclass
class RunConfig:
    seed: int = _f(0, "Seed for data order, sampling and initialisation.", ge=0, le=2**32 - 1)
    output_dir: str = _f("runs/default", "Run directory: checkpoints, metrics.jsonl, TensorBoard events, samples.")
    model: ModelConfig = _sub(ModelConfig, "Policy model.")
    data: DataConfig = _sub(DataConfig, "Datasets, prompts and media sampling.")
    rollout: RolloutConfig = _sub(RolloutConfig, "Sampling of completions.")
    reward: RewardConfig = _sub(RewardConfig, "Reward functions and weights.")
    algo: AlgoConfig = _sub(AlgoConfig, "Advantages, policy loss, KL, aggregation.")
    trainer: TrainerConfig = _sub(TrainerConfig, "Optimisation, logging, checkpoints.")
    eval: EvalConfig = _sub(EvalConfig, "Evaluation decoding and scoring.")
    search: SearchConfig = _sub(SearchConfig, "TimeSearch-R frame search and GRPO-CSV.")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting ints to floats and nested dicts to dataclasses."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of fields, got {value!r}")
        return _build(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} does not match {tp}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {_convert(k, args[0], key): _convert(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads "1e-3" (no dot) as a string
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp in (float, str) and not isinstance(value, tp):
        raise ConfigError(f"{key}: expected a {tp.__name__}, got {value!r}")
    return value


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"unknown config key '{key}'; valid keys here: {sorted(names)}")
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _convert(value, hints[name], key)
    default = cls()
    for name in names - set(kwargs):
        kwargs[name] = getattr(default, name)
    return cls(**kwargs)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"algo.beta=0.04"`` → (["algo", "beta"], 0.04); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def read_overrides_file(path: str | Path) -> list[str]:
    """The dotted overrides of a text file, one per line; blank lines and lines starting with '#' are skipped."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"overrides file {path} does not exist")
    overrides = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if "=" not in text:
            raise ConfigError(f"{path}:{number}: {text!r} is not an override; write one section.key=value per line")
        overrides.append(text)
    return overrides


def load_config(path: str | Path | None = None, overrides: list[str] = (), cls: type = RunConfig) -> Any:
    """Read a YAML file (or start from defaults), apply dotted overrides, validate the whole tree."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err})") from err
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    for text in overrides:
        keys, value = parse_override(text)
        node = values
        for part in keys[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: '{part}' is not a section")
        node[keys[-1]] = value
    try:
        config = _build(cls, values)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}" if path else str(err)) from None
    validate(config)
    return config


def validate(config: RunConfig) -> None:
    """Refuse values outside their field's range, incompatible combinations and an output_dir that cannot be a
    folder, with a message that says what to change."""
    check_ranges(config)
    _check_output_dir(config.output_dir)
    v = config.data.video
    if v.fps is not None and v.nframes is not None:
        raise ConfigError("data.video.fps and data.video.nframes are exclusive; set one of them to null")
    if v.min_pixels > v.max_pixels:
        raise ConfigError("data.video.min_pixels is larger than data.video.max_pixels")
    if v.min_frames > v.max_frames:
        raise ConfigError(f"data.video.min_frames ({v.min_frames}) is larger than data.video.max_frames ({v.max_frames})")
    if config.data.image.min_pixels > config.data.image.max_pixels:
        raise ConfigError("data.image.min_pixels is larger than data.image.max_pixels")
    if config.trainer.prompts_per_step % config.trainer.micro_batch_prompts:
        raise ConfigError("trainer.prompts_per_step must be a multiple of trainer.micro_batch_prompts")
    from vlm_rl.algorithms import ADVANTAGE_ESTIMATORS, LOSSES, TOKEN_WEIGHTINGS

    algo = config.algo
    for key, registry, extra in (
        ("advantage", ADVANTAGE_ESTIMATORS, []),
        ("policy_loss", LOSSES, []),
        ("token_weighting", TOKEN_WEIGHTINGS, ["none"]),
    ):
        if getattr(algo, key) not in registry and getattr(algo, key) not in extra:
            raise ConfigError(f"algo.{key}: {getattr(algo, key)!r} is not one of {[*extra, *registry.names()]}")
    for f in dataclasses.fields(algo):
        value = getattr(algo, f.name)
        if dataclasses.is_dataclass(value) and hasattr(value, "check"):
            value.check(config)
    config.search.check(config)


def check_ranges(node: Any, prefix: str = "") -> None:
    """Refuse the first numeric field of the dataclass tree `node` whose value lies outside its declared range."""
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_ranges(value, key + ".")
        elif value is not None and "range" in f.metadata and value not in f.metadata["range"]:
            allowed = f.metadata["range"]
            why = f" ({allowed.why})" if allowed.why else ""
            raise ConfigError(f"{key}={value!r} is out of range; allowed: {allowed}{why}")


def _check_output_dir(output_dir: str) -> None:
    """output_dir must be a folder or a path that `mkdir -p` can create: neither it nor a parent may be a file."""
    path = Path(output_dir).expanduser()
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(f"output_dir={output_dir}: {folder} is a file, not a folder; choose another output_dir")
            return


def _needs_accuracy(run: RunConfig, flag: str) -> None:
    if "accuracy" not in run.reward.weights:
        raise ConfigError(f"{flag} needs the 'accuracy' reward: add it to reward.weights (weight 0 keeps it out of the total)")


def to_dict(config: Any) -> dict[str, Any]:
    """The config as plain YAML-ready data."""
    return dataclasses.asdict(config)


def save_config(config: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def describe(cls: type = RunConfig, prefix: str = "") -> list[str]:
    """One line per field: dotted key, default and help."""
    lines = []
    default = cls()
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        value = getattr(default, f.name)
        if dataclasses.is_dataclass(value):
            lines.append(f"{key}: {f.metadata['help']}")
            lines.extend(describe(type(value), key + "."))
        else:
            allowed = f" (allowed: {f.metadata['range']})" if "range" in f.metadata else ""
            lines.append(f"{key} = {value!r}  # {f.metadata['help']}{allowed}")
    return lines
