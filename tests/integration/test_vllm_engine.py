"""The vLLM engine's parts that need no GPU: requests, result parsing, weight names, the HTTP server.

vLLM itself cannot run here (CUDA only). Its place is taken by `HFBackend`, which processes each
request the way vLLM's Qwen2.5-VL processor does and generates with transformers, behind the real
`vlm-rl vllm-serve` HTTP server on loopback. So every byte the trainer sends (frames, prompt text,
sampling settings, weights) crosses the same path it would to vLLM.
"""

from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np
import pytest
import torch
from hf_vllm_backend import HFBackend, process_request
from prompt_kinds import prompt_kinds
from safetensors.torch import load_file

from vlm_rl.models.loading import load_adapter, load_model
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rollout import HFRolloutEngine, SamplingParams
from vlm_rl.rollout.vllm_engine import VLLMRolloutEngine
from vlm_rl.rollout.vllm_requests import build_request, decode_request, encode_request, sampling_kwargs, to_rollouts
from vlm_rl.rollout.vllm_server import TOKEN_VARIABLE, RemoteVLLM, VLLMServerError, make_server
from vlm_rl.rollout.weight_sync import checkpoint_tensors

pytestmark = pytest.mark.slow

TOKEN = "engine-test-token"

VISION = ("input_ids", "pixel_values_videos", "video_grid_thw", "second_per_grid_ts", "pixel_values", "image_grid_thw")


@pytest.fixture
def setup(run_config, synthetic_data, tmp_path):
    adapter = load_adapter(run_config.model.path)
    prompts = prompt_kinds(PromptEncoder(adapter, run_config.data), synthetic_data.train_path, tmp_path)
    return run_config, adapter, prompts


@pytest.fixture
def server(run_config, monkeypatch):
    """`make_server` on a free loopback port around an HF backend with its own copy of the model, behind a token
    that the trainer's client finds in ``$VLM_RL_SERVER_TOKEN``."""
    backend = HFBackend(load_model(run_config.model, trainable=False), load_adapter(run_config.model.path))
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    httpd = make_server(backend, "127.0.0.1", 0, model=run_config.model.path, token=TOKEN)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield backend, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _same_inputs(a, b) -> None:
    for key in VISION:
        x, y = getattr(a, key), getattr(b, key)
        assert (x is None) == (y is None), key
        if x is not None:
            assert torch.equal(x.reshape(-1).to(torch.float64), y.reshape(-1).to(torch.float64)), key


def test_a_request_gives_vllms_processor_the_trainers_exact_inputs(setup):
    _, adapter, prompts = setup
    for prompt in prompts:
        request = build_request(prompt)
        assert request["prompt"] == prompt.source.text
        _same_inputs(process_request(adapter, request), prompt)
        wire = decode_request(json.loads(json.dumps(encode_request(request))))
        _same_inputs(process_request(adapter, wire), prompt)
    frames, metadata = build_request(prompts[0])["multi_modal_data"]["video"]
    clip = prompts[0].source.video
    assert frames.dtype == np.uint8 and frames.shape == (clip.frames.shape[0], *clip.frames.shape[2:], 3)
    assert metadata["frames_indices"] == list(clip.indices) and metadata["fps"] == clip.source_fps
    assert "multi_modal_data" not in build_request(prompts[2])


def test_sampling_settings_and_result_parsing(setup):
    _, adapter, _ = setup
    kwargs = sampling_kwargs(SamplingParams(n=3, max_new_tokens=7, temperature=0.0, top_p=0.5, top_k=0), adapter)
    assert kwargs["n"] == 3 and kwargs["max_tokens"] == 7 and kwargs["top_k"] == -1 and kwargs["top_p"] == 1.0
    assert kwargs["logit_bias"] == {t: -100.0 for t in adapter.blocked_token_ids}
    assert kwargs["stop_token_ids"] == adapter.eos_token_ids
    eos = adapter.eos_token_ids[0]
    outputs = [[([5, 6, eos, 9], "stop"), ([5, 6, 7], "length")], [([eos], "stop"), ([8, eos], "stop")]]
    rollouts = to_rollouts(outputs, adapter, n=2)
    assert rollouts.completion_ids == [[5, 6, eos], [5, 6, 7], [eos], [8, eos]]
    assert rollouts.truncated == [False, True, False, False] and rollouts.group_ids.tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="expected n=3"):
        to_rollouts(outputs, adapter, n=3)


def _saved_names(model, pushed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The pushed tensors under the names `save_pretrained` writes (transformers' own renaming)."""
    from transformers.core_model_loading import revert_weight_conversion

    return revert_weight_conversion(model, dict(pushed))


def test_pushed_weights_are_the_models_and_its_saved_checkpoint(run_config):
    model = load_model(run_config.model, trainable=False)
    pushed = {name: tensor.clone() for name, tensor in checkpoint_tensors(model)}
    state = model.state_dict()
    assert set(pushed) < set(state) and set(state) - set(pushed) == {"lm_head.weight"}, "the tied head is sent once"
    assert all(torch.equal(pushed[k], state[k]) for k in pushed)
    saved = load_file(f"{run_config.model.path}/model.safetensors")
    as_saved = _saved_names(model, pushed)
    assert as_saved.keys() == saved.keys() and all(torch.equal(as_saved[k], saved[k]) for k in saved)


def test_lora_is_pushed_merged_under_base_names(run_config):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(load_model(run_config.model, trainable=False), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pushed = {name: tensor.clone() for name, tensor in checkpoint_tensors(model)}
    reference = load_model(run_config.model, trainable=False)
    assert pushed.keys() == {k for k, _ in checkpoint_tensors(reference)}
    changed = [k for k in pushed if not torch.equal(pushed[k], reference.state_dict()[k])]
    assert changed and all(k.endswith(("q_proj.weight", "v_proj.weight")) for k in changed)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the trained model is left exactly as it was"
    copy = get_peft_model(load_model(run_config.model, trainable=False), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    copy.load_state_dict(before)
    merged = copy.merge_and_unload().state_dict()
    assert all(torch.allclose(pushed[k], merged[k], atol=1e-6) for k in pushed)


def test_server_generates_what_the_trainer_would_and_takes_weight_pushes(setup, server, run_config):
    _, adapter, prompts = setup
    backend, url = server
    engine = VLLMRolloutEngine(RemoteVLLM(url, chunk_mb=1), adapter)
    local = load_model(run_config.model, trainable=False)
    params = SamplingParams(n=2, max_new_tokens=10, temperature=0.0)
    remote = engine.generate(prompts, params)
    here = HFRolloutEngine(local, adapter).generate(prompts, params)
    assert remote.completion_ids == here.completion_ids and remote.truncated == here.truncated
    assert remote.texts == here.texts and torch.equal(remote.group_ids, here.group_ids)
    assert len(backend.requests) == len(prompts)

    with torch.no_grad():
        for param in local.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    names = sorted(name for name, _ in checkpoint_tensors(local))
    engine.sync_weights(local)
    assert len(backend.pushes) > 1 and sorted(sum(backend.pushes, [])) == names, "pushed in 1 MiB pieces, each name once"
    state = backend.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in local.state_dict().items())
    after = engine.generate(prompts, params)
    assert after.completion_ids == HFRolloutEngine(local, adapter).generate(prompts, params).completion_ids
    assert engine.backend.load_weights(checkpoint_tensors(local)) == len(names), "the server counts every tensor loaded"


def test_server_errors_are_one_clear_line(server):
    _, url = server
    import urllib.request

    request = urllib.request.Request(url + "/generate", data=b"{not json", method="POST", headers={"Authorization": f"Bearer {TOKEN}"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 400 and "bad /generate request" in json.loads(err.value.read())["error"]
    with pytest.raises(VLLMServerError, match="cannot be reached.*vllm-serve"):
        RemoteVLLM("http://127.0.0.1:9", timeout_s=5)


def test_grpo_trains_with_the_server_engine_and_pushes_every_update(server, run_config):
    from vlm_rl.training.grpo import GRPOTrainer

    from vlm_rl.config import ModelConfig

    backend, url = server
    config = dataclasses.replace(
        run_config,
        rollout=dataclasses.replace(run_config.rollout, engine="vllm-server", vllm=dataclasses.replace(run_config.rollout.vllm, server_url=url)),
        reward=dataclasses.replace(run_config.reward, weights={"length": 1.0}, custom={"length": "rewards_for_tests:text_length"}),
    )
    final = GRPOTrainer(config).train()
    assert len(backend.pushes) == 1 + config.trainer.steps, "once at the start, then after every optimizer step"
    assert len(backend.requests) >= config.trainer.steps * config.trainer.prompts_per_step
    initial = load_model(run_config.model, trainable=False).state_dict()
    trained = load_model(ModelConfig(path=str(final)), trainable=False).state_dict()
    assert any(not torch.equal(initial[k], trained[k]) for k in trained), "the policy was updated"
    state = backend.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in trained.items()), "the server holds the final policy"
