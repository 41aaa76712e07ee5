"""Every rollout engine has the `RolloutEngine` methods with the protocol's signatures (the vLLM ones
import without vllm), and the HF engine samples with whatever module `sync_weights` handed it."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
import torch
from prompt_kinds import prompt_kinds

from vlm_rl.models.loading import load_adapter, load_model
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rollout.base import RolloutEngine, SamplingParams
from vlm_rl.rollout.hf_engine import HFRolloutEngine
from vlm_rl.rollout.vllm_engine import LocalVLLM, VLLMBackend, VLLMRolloutEngine
from vlm_rl.rollout.vllm_server import RemoteVLLM


def _methods(protocol: type) -> dict[str, inspect.Signature]:
    return {n: inspect.signature(f) for n, f in vars(protocol).items() if inspect.isfunction(f) and not n.startswith("_")}


def test_the_protocol_holds_what_the_trainer_evaluation_and_demo_call():
    assert set(_methods(RolloutEngine)) == {"generate", "sync_weights"}
    assert "streamer" in _methods(RolloutEngine)["generate"].parameters, "the demo streams through generate"


@pytest.mark.parametrize(
    "cls, protocol",
    [(HFRolloutEngine, RolloutEngine), (VLLMRolloutEngine, RolloutEngine), (LocalVLLM, VLLMBackend), (RemoteVLLM, VLLMBackend)],
)
def test_every_engine_has_the_protocol_methods_and_signatures(cls, protocol):
    for name, expected in _methods(protocol).items():
        assert callable(getattr(cls, name, None)), f"{cls.__name__} has no {name}"
        assert inspect.signature(getattr(cls, name)) == expected, f"{cls.__name__}.{name}"


def test_the_vllm_engines_import_without_importing_vllm():
    code = "import sys, vlm_rl.rollout.vllm_engine, vlm_rl.rollout.vllm_server, vlm_rl.rollout.factory; print('vllm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _flip_logits(model: torch.nn.Module) -> None:
    """Negate the final norm's weight in place: every logit changes sign exactly, so greedy decoding picks
    other tokens, and a second flip restores the model bit for bit."""
    with torch.no_grad():
        dict(model.named_parameters())["model.language_model.norm.weight"].neg_()


@pytest.mark.slow
@pytest.mark.parametrize("shared_prefill", [False, True])
def test_the_hf_engine_samples_with_the_synced_module_itself(run_config, synthetic_data, tmp_path, shared_prefill):
    adapter = load_adapter(run_config.model.path)
    prompts = prompt_kinds(PromptEncoder(adapter, run_config.data), synthetic_data.train_path, tmp_path)
    params = SamplingParams(n=2, max_new_tokens=8, temperature=0.0)
    first, policy = load_model(run_config.model, trainable=False), load_model(run_config.model, trainable=False)
    _flip_logits(policy)
    engine = HFRolloutEngine(first, adapter, shared_prefill=shared_prefill)
    before = engine.generate(prompts, params).completion_ids
    engine.sync_weights(policy)
    synced = engine.generate(prompts, params).completion_ids
    assert synced == HFRolloutEngine(policy, adapter, shared_prefill=shared_prefill).generate(prompts, params).completion_ids
    assert synced != before
    _flip_logits(policy)  # an in-place update, as an optimizer step is: no copy was taken, so the engine sees it
    assert engine.generate(prompts, params).completion_ids == before
