"""Every transformers (and torch) internal this project touches, in one module.

These are parts no public API promises to keep: the per-layer KV cache classes and their
``lazy_initialization`` / ``keys`` / ``values`` / ``update``, ``Cache.batch_repeat_interleave``, the
Qwen-VL models' ``get_rope_index`` and stored ``rope_deltas``, the checkpointed layers' flags
(``gradient_checkpointing``, ``_can_checkpoint_with_cache``) and their forwards' signatures, and
torch's ``_non_persistent_buffers_set``. tests/unit/test_hf_internals.py checks each against the
installed versions, so an upgrade that moves one fails there with its name.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Iterator

import torch
from transformers import Cache, DynamicLayer, PreTrainedModel


def rope_index_module(model: torch.nn.Module) -> torch.nn.Module:
    """The submodule of a Qwen-VL model (possibly wrapped) that builds mRoPE positions (``get_rope_index``)
    and stores the ``rope_deltas`` that a cached continuation in `generate` reads."""
    found = next((m for m in model.modules() if hasattr(m, "get_rope_index")), None)
    if found is None:
        raise TypeError(f"{type(model).__name__} has no module with get_rope_index; the prefill needs a Qwen2-VL or Qwen2.5-VL model")
    return found


def rope_index(
    rope: torch.nn.Module,
    ids: torch.Tensor,
    token_types: torch.Tensor,
    vision: dict[str, torch.Tensor],
    attention_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """mRoPE positions [3, B, P] of `ids` and their deltas (text position of the next token minus P); tokens
    outside `attention_mask` (padding) get no position."""
    return rope.get_rope_index(
        ids,
        token_types,
        image_grid_thw=vision.get("image_grid_thw"),
        video_grid_thw=vision.get("video_grid_thw"),
        second_per_grid_ts=vision.get("second_per_grid_ts"),
        attention_mask=attention_mask,
    )


def set_rope_deltas(rope: torch.nn.Module, deltas: torch.Tensor) -> None:
    """Store `deltas` where `generate` reads them to place tokens after a prefilled cache."""
    rope.rope_deltas = deltas


def repeat_rows(cache: Cache, repeats: int) -> Cache:
    """`cache` with each batch row repeated `repeats` times (in place; returned for convenience)."""
    cache.batch_repeat_interleave(repeats)
    return cache


def read_only(cache: Cache) -> Cache:
    """A cache that hands out `cache`'s keys/values with the new tokens' appended and stores nothing."""
    return Cache(layers=[_ReadOnlyLayer(layer.keys, layer.values) for layer in cache.layers])


class _ReadOnlyLayer(DynamicLayer):
    """One layer of a read-only cache: a (re)computed forward over it always sees the same states."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        super().__init__()
        self.lazy_initialization(keys, values)
        self.keys, self.values = keys, values

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([self.keys, key_states], dim=-2), torch.cat([self.values, value_states], dim=-2)


_FLAGGED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _flagged_modules(model: torch.nn.Module) -> list[tuple[torch.nn.Module, bool]]:
    """The modules of `model` with a ``gradient_checkpointing`` flag, each with whether it is a decoder
    layer that can keep a cache it only reads. Found once per model object (held by weak references,
    so the model is freed as usual); its module tree must not change after the first call."""
    refs = _FLAGGED.get(model)
    if refs is None:
        refs = [
            (
                weakref.ref(m),
                hasattr(m, "_can_checkpoint_with_cache") and "past_key_values" in inspect.signature(type(m).forward).parameters,
            )
            for m in model.modules()
            if hasattr(m, "gradient_checkpointing")
        ]
        _FLAGGED[model] = refs
    return [(module, reader) for module, reader in ((ref(), reader) for ref, reader in refs) if module is not None]


@contextlib.contextmanager
def checkpointing(model: torch.nn.Module, mode: str) -> Iterator[None]:
    """For the modules transformers checkpoints: "off" runs them plainly, with the cache the models'
    forwards would otherwise refuse (a forward that writes the cache cannot be replayed);
    "with_cache" lets the decoder layers keep a cache they only read."""
    flagged = [(m, reader) for m, reader in _flagged_modules(model) if m.gradient_checkpointing]
    decoder_layers = [m for m, reader in flagged if reader]
    if mode == "off":
        switched = decoder_layers + [m for m, _ in flagged if isinstance(m, PreTrainedModel)]
        for module in switched:
            module.gradient_checkpointing = False
    else:
        for layer in decoder_layers:
            layer._can_checkpoint_with_cache = True
    try:
        yield
    finally:
        if mode == "off":
            for module in switched:
                module.gradient_checkpointing = True
        else:
            for layer in decoder_layers:
                del layer._can_checkpoint_with_cache


def saved_buffers(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The module's own buffers that `state_dict` saves (the persistent ones)."""
    return [(n, b) for n, b in module.named_buffers(recurse=False) if n not in module._non_persistent_buffers_set]
