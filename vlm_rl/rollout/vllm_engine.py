"""Rollouts with vLLM, colocated in the training process or behind `vlm-rl vllm-serve`.

`VLLMRolloutEngine` is the engine the trainer and `vlm-rl eval` call; it turns prompts into
requests, hands them to a backend and parses what comes back. Backends: `LocalVLLM` (a
``vllm.LLM`` in this process; CUDA only, imported on first use) and `RemoteVLLM` in
`vlm_rl.rollout.vllm_server` (the same calls over HTTP). After every optimizer step the trainer
calls `sync_weights` with the updated policy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import torch

from vlm_rl.config import ConfigError, VLLMConfig
from vlm_rl.models.adapter import PromptInputs, QwenVLAdapter
from vlm_rl.rollout.base import Rollouts, SamplingParams
from vlm_rl.rollout.vllm_requests import Completion, build_request, sampling_kwargs, to_rollouts
from vlm_rl.rollout.weight_sync import checkpoint_tensors


class VLLMBackend(Protocol):
    def generate(self, requests: list[dict[str, Any]], sampling: dict[str, Any]) -> list[list[Completion]]:
        """n completions per request (`sampling` holds ``vllm.SamplingParams`` keyword arguments)."""

    def load_weights(self, named: Iterable[tuple[str, torch.Tensor]]) -> int:
        """Load checkpoint-named tensors into the served model; returns how many were loaded."""


class VLLMRolloutEngine:
    """The rollout engine interface over a vLLM backend."""

    def __init__(self, backend: VLLMBackend, adapter: QwenVLAdapter) -> None:
        self.backend = backend
        self.adapter = adapter

    def sync_weights(self, policy: torch.nn.Module) -> None:
        """Load the policy's current weights (checkpoint names, LoRA merged) into the backend."""
        self.backend.load_weights(checkpoint_tensors(policy))

    def generate(self, prompts: Sequence[PromptInputs], params: SamplingParams, *, streamer=None) -> Rollouts:
        if streamer is not None:
            raise ValueError("the vLLM engine does not stream tokens; use rollout.engine=hf for streaming")
        outputs = self.backend.generate([build_request(p) for p in prompts], sampling_kwargs(params, self.adapter))
        return to_rollouts(outputs, self.adapter, params.n)


class LocalVLLM:
    """A ``vllm.LLM`` in this process, asleep (GPU memory released) outside `generate` when `cfg.sleep`.

    With several training processes each holds its own engine (``external_launcher``: vLLM joins
    the launcher's process group instead of starting workers), seeded per process.
    """

    def __init__(self, model_path: str, cfg: VLLMConfig, *, seed: int = 0, world_size: int = 1, sleep: bool | None = None) -> None:
        try:
            import vllm
        except ImportError as err:
            raise ConfigError(
                f"the vLLM engine needs vllm ({err}); install it on a CUDA machine with pip install -e '.[vllm]', "
                "or use the hf engine"
            ) from None
        # In-process engine core: the weight-loading call below reaches the model without pickling tensors.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        self.sleep = cfg.sleep if sleep is None else sleep
        kwargs: dict[str, Any] = {
            "model": model_path,
            "tensor_parallel_size": cfg.tensor_parallel_size,
            "gpu_memory_utilization": cfg.gpu_memory_utilization,
            "dtype": cfg.dtype,
            "seed": seed,
            "enable_sleep_mode": self.sleep,
            "enable_prefix_caching": True,
        }
        if cfg.max_model_len is not None:
            kwargs["max_model_len"] = cfg.max_model_len
        if world_size > 1:
            kwargs["distributed_executor_backend"] = "external_launcher"
        self._vllm = vllm
        self.llm = vllm.LLM(**kwargs)
        self._asleep: set[str] = set()
        if self.sleep:
            self._sleep()

    def generate(self, requests: list[dict[str, Any]], sampling: dict[str, Any]) -> list[list[Completion]]:
        """vLLM runs each request as a token prompt: its ``prompt_token_ids``, not its text."""
        self._wake("weights", "kv_cache")
        try:
            token_prompts = [{k: v for k, v in r.items() if k != "prompt"} for r in requests]
            outputs = self.llm.generate(token_prompts, self._vllm.SamplingParams(**sampling), use_tqdm=False)
        finally:
            if self.sleep:
                self._sleep()
        return [[(list(c.token_ids), str(c.finish_reason)) for c in out.outputs] for out in outputs]

    def load_weights(self, named: Iterable[tuple[str, torch.Tensor]]) -> int:
        self._wake("weights")
        loaded = sum(self.llm.collective_rpc(_load_into_worker, args=(named,)))
        self.llm.reset_prefix_cache()  # cached prompt KV was computed with the old weights
        return loaded

    def _wake(self, *tags: str) -> None:
        todo = [t for t in tags if t in self._asleep]
        if todo:
            self.llm.wake_up(tags=todo)
            self._asleep.difference_update(todo)

    def _sleep(self) -> None:
        self.llm.sleep(level=1)
        self._asleep = {"weights", "kv_cache"}


def _load_into_worker(worker, named: Iterable[tuple[str, torch.Tensor]]) -> int:
    """Runs inside a vLLM worker: its model maps checkpoint names to its own parameters."""
    return len(worker.model_runner.model.load_weights(named))
