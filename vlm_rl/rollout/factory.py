"""The rollout engine a config asks for."""

from __future__ import annotations

from vlm_rl.config import RolloutConfig
from vlm_rl.models.adapter import QwenVLAdapter
from vlm_rl.rollout.base import RolloutEngine
from vlm_rl.rollout.hf_engine import HFRolloutEngine


def make_engine(
    rollout: RolloutConfig, model, adapter: QwenVLAdapter, model_path: str, *, seed: int = 0, world_size: int = 1
) -> RolloutEngine:
    """`rollout.engine`: hf around `model`; vllm (a local engine on `model_path`) or vllm-server (a client).

    vLLM engines start from the weights at `model_path`; the trainer pushes its policy's before use.
    """
    if rollout.engine == "hf":
        return HFRolloutEngine(model, adapter, shared_prefill=rollout.shared_prefill)
    from vlm_rl.rollout.vllm_engine import VLLMRolloutEngine

    v = rollout.vllm
    if rollout.engine == "vllm":
        from vlm_rl.rollout.vllm_engine import LocalVLLM

        return VLLMRolloutEngine(LocalVLLM(model_path, v, seed=seed, world_size=world_size), adapter)
    from vlm_rl.rollout.vllm_server import RemoteVLLM

    return VLLMRolloutEngine(RemoteVLLM(v.server_url, timeout_s=v.timeout_s, chunk_mb=v.sync_chunk_mb, token_file=v.token_file), adapter)
