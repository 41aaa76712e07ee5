"""The transformers and torch internals that vlm_rl/models/hf_internals.py touches still exist, with the
names, signatures and meaning it relies on, in the installed versions (both Qwen-VL families). A
failure names the part an upgrade moved: adapt hf_internals.py (the only module that touches it)."""

from __future__ import annotations

import contextlib
import gc
import inspect
import weakref

import pytest
import torch
import transformers

from vlm_rl.models import hf_internals
from vlm_rl.models.loading import load_adapter, model_class
from vlm_rl.models.tiny import build_tiny_model


def _require(ok: bool, what: str) -> None:
    if not ok:
        pytest.fail(f"transformers {transformers.__version__}: {what}; adapt vlm_rl/models/hf_internals.py", pytrace=False)


@contextlib.contextmanager
def _using(what: str):
    """An error raised while exercising an internal fails with the internal's name."""
    try:
        yield
    except pytest.fail.Exception:
        raise
    except Exception as err:
        _require(False, f"{what} broke ({type(err).__name__}: {err})")


def _params(owner, name: str) -> list[str]:
    fn = getattr(owner, name, None)
    _require(callable(fn), f"{getattr(owner, '__name__', type(owner).__name__)}.{name} is gone")
    return [p for p in inspect.signature(fn).parameters if p != "self"]


def test_cache_classes_have_the_parts_the_read_only_and_repeated_caches_use():
    for name in ("Cache", "DynamicLayer", "PreTrainedModel"):
        _require(hasattr(transformers, name), f"transformers.{name} is gone")
    Cache, DynamicLayer = transformers.Cache, transformers.DynamicLayer
    _require("layers" in _params(Cache, "__init__"), "Cache(layers=...) no longer takes a list of layers")
    _require(_params(Cache, "batch_repeat_interleave") == ["repeats"], "Cache.batch_repeat_interleave(repeats) changed")
    _require(
        _params(DynamicLayer, "lazy_initialization") == ["key_states", "value_states"],
        "DynamicLayer.lazy_initialization(key_states, value_states) changed",
    )
    _require(_params(DynamicLayer, "update")[:2] == ["key_states", "value_states"], "DynamicLayer.update(key_states, value_states, ...) changed")

    keys, values = torch.randn(2, 1, 3, 4), torch.randn(2, 1, 3, 4)
    with _using("Cache(layers=[DynamicLayer()]).update"):
        cache = Cache(layers=[DynamicLayer()])
        cache.update(keys, values, 0)
    _require(torch.equal(cache.layers[0].keys, keys) and torch.equal(cache.layers[0].values, values), "Cache.layers[i].keys / .values")
    with _using("Cache.batch_repeat_interleave"):
        hf_internals.repeat_rows(cache, 3)
    _require(torch.equal(cache.layers[0].keys, keys.repeat_interleave(3, 0)), "batch_repeat_interleave no longer repeats rows in place")

    new_keys, new_values = torch.randn(6, 1, 2, 4), torch.randn(6, 1, 2, 4)
    with _using("a Cache of DynamicLayer subclasses (read_only)"):
        shared = hf_internals.read_only(cache)
        out_keys, out_values = shared.update(new_keys, new_values, 0)
    _require(torch.equal(out_keys[:, :, 3:], new_keys) and torch.equal(out_values[:, :, :3], values.repeat_interleave(3, 0)), "Cache.update no longer reaches the layer's update")
    _require(shared.get_seq_length() == 3, "a read-only layer must still report the prompt's length (the attention mask reads it)")
    _require(shared.layers[0].keys.shape[2] == 3, "the read-only cache stored new keys")


def test_torch_keeps_the_set_of_buffers_state_dict_leaves_out():
    module = torch.nn.Module()
    module.register_buffer("kept", torch.zeros(1))
    module.register_buffer("dropped", torch.zeros(1), persistent=False)
    assert "dropped" in getattr(module, "_non_persistent_buffers_set", ()), f"torch {torch.__version__}: Module._non_persistent_buffers_set is gone"
    assert [n for n, _ in hf_internals.saved_buffers(module)] == ["kept"] and set(module.state_dict()) == {"kept"}


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen2_vl"])
def tiny(request, tiny_model_dir, tmp_path_factory):
    family = request.param
    path = tiny_model_dir if family == "qwen2_5_vl" else build_tiny_model(tmp_path_factory.mktemp("qwen2_vl") / "tiny", family=family)
    return family, load_adapter(str(path)), model_class(family).from_pretrained(path, dtype=torch.float32)


def test_rope_index_builds_mrope_positions_and_deltas_where_generate_reads_them(tiny):
    family, adapter, model = tiny
    with _using("a module with get_rope_index"):
        rope = hf_internals.rope_index_module(model)
    params = inspect.signature(rope.get_rope_index).parameters
    _require(
        _params(rope, "get_rope_index")[:4] == ["input_ids", "mm_token_type_ids", "image_grid_thw", "video_grid_thw"],
        f"{type(rope).__name__}.get_rope_index(input_ids, mm_token_type_ids, image_grid_thw, video_grid_thw, ...) changed",
    )
    takes_seconds = "second_per_grid_ts" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    _require(takes_seconds, f"{type(rope).__name__}.get_rope_index no longer accepts second_per_grid_ts")
    _require(hasattr(rope, "rope_deltas"), f"{type(rope).__name__}.rope_deltas (read by generate after a prefill) is gone")

    prompt = adapter.encode(adapter.render([{"role": "user", "content": [{"type": "text", "text": "what shape"}]}], add_generation_prompt=True))
    length = prompt.length
    with _using(f"{type(rope).__name__}.get_rope_index"):
        positions, deltas = hf_internals.rope_index(rope, prompt.input_ids[None], prompt.mm_token_type_ids[None], {})
    _require(tuple(positions.shape) == (3, 1, length), "get_rope_index no longer returns positions [3, B, P] first")
    _require(torch.equal(positions, torch.arange(length).expand(3, 1, -1)) and int(deltas.sum()) == 0, "text-only mRoPE positions are no longer 0..P-1 with zero deltas")
    hf_internals.set_rope_deltas(rope, deltas)
    assert rope.rope_deltas is deltas


def test_checkpointed_layers_keep_the_flags_the_shared_prefix_forward_switches(tiny):
    family, _, model = tiny
    layers = model.config.get_text_config().num_hidden_layers
    flagged = hf_internals._flagged_modules(model)
    readers = [m for m, reader in flagged if reader]
    _require(len(readers) == layers, f"expected {layers} decoder layers with _can_checkpoint_with_cache and past_key_values in forward, found {len(readers)}")
    _require(all(m._can_checkpoint_with_cache is False for m in readers), "decoder layers' _can_checkpoint_with_cache no longer defaults to False")

    model.activation_checkpointing_enable()
    try:
        on = [m for m, _ in flagged if m.gradient_checkpointing]
        _require(set(map(id, readers)) <= set(map(id, on)), "activation checkpointing no longer sets the decoder layers' gradient_checkpointing")
        models = [m for m in on if isinstance(m, transformers.PreTrainedModel)]
        _require(bool(models), "no PreTrainedModel inside carries gradient_checkpointing (the language model's forward reads it)")
        with hf_internals.checkpointing(model, "off"):
            assert not any(m.gradient_checkpointing for m in readers + models)
        assert all(m.gradient_checkpointing for m in on)
        with hf_internals.checkpointing(model, "with_cache"):
            assert all(m._can_checkpoint_with_cache for m in readers)
        assert not any(m._can_checkpoint_with_cache for m in readers)
    finally:
        model.activation_checkpointing_disable()


def test_the_checkpointed_modules_are_found_once_per_model_and_do_not_keep_it_alive(tiny_model_dir, monkeypatch):
    model = model_class("qwen2_5_vl").from_pretrained(tiny_model_dir, dtype=torch.float32)
    model.activation_checkpointing_enable()
    scans = []
    modules = model.modules
    monkeypatch.setattr(model, "modules", lambda: scans.append(1) or modules())
    for mode in ("off", "with_cache", "off"):
        with hf_internals.checkpointing(model, mode):
            pass
    assert len(scans) == 1 and model in hf_internals._FLAGGED
    gone = weakref.ref(model)
    monkeypatch.undo()
    del model, modules
    gc.collect()
    assert gone() is None, "the scan cache keeps the model alive"
