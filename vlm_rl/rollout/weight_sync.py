"""The policy's weights under Hugging Face names, for pushing into a vLLM engine.

vLLM's Qwen2.5-VL `load_weights` maps Hugging Face names to its own modules, both the layout of
transformers >= 4.52 (``model.language_model.*``, ``model.visual.*``, ``lm_head.*``, what the
model holds in memory) and the older one `save_pretrained` still writes (``model.layers.*``,
``visual.*``). The trainer sends the in-memory names with: LoRA merged into the base weights (its
``base_layer`` / ``lora_*`` names gone), tied weights once, DeepSpeed ZeRO-3 shards gathered
module by module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from vlm_rl.models.hf_internals import saved_buffers


@torch.no_grad()
def checkpoint_tensors(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` in `state_dict` order, named as in the plain (non-PEFT) model's `state_dict`.

    A LoRA layer's weight is sent as base + its active adapters' delta, computed aside: the
    trained model is never merged and unmerged (that round trip would change its base weights by
    rounding). Each tensor is valid until the next item is taken (ZeRO-3 frees a gathered module
    after it); copy it to keep it.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    lora_of = {id(m.base_layer): m for m in base.modules() if hasattr(m, "get_delta_weight") and hasattr(m, "base_layer")}
    seen: set[int] = set()
    for module_name, module in base.named_modules():
        own = list(module.named_parameters(recurse=False)) + saved_buffers(module)
        if not own:
            continue
        lora = lora_of.get(id(module))
        with gathered([t for _, t in own] + (list(lora.parameters()) if lora is not None else [])):
            for name, tensor in own:
                key = _checkpoint_name(f"{module_name}.{name}" if module_name else name)
                if key is None or tensor.data_ptr() in seen:
                    continue
                seen.add(tensor.data_ptr())
                if lora is not None and name == "weight" and not lora.merged:
                    for adapter in lora.active_adapters:
                        if adapter in lora.lora_A:
                            tensor = tensor + lora.get_delta_weight(adapter).to(tensor.dtype)
                yield key, tensor.detach()


def chunks(named: Iterator[tuple[str, torch.Tensor]], max_bytes: int) -> Iterator[dict[str, torch.Tensor]]:
    """Groups of CPU copies of at most `max_bytes` each (a larger single tensor is a group of its own)."""
    group: dict[str, torch.Tensor] = {}
    size = 0
    for name, tensor in named:
        nbytes = tensor.numel() * tensor.element_size()
        if group and size + nbytes > max_bytes:
            yield group
            group, size = {}, 0
        group[name] = tensor.to("cpu", copy=True).contiguous()
        size += nbytes
    if group:
        yield group


def _checkpoint_name(name: str) -> str | None:
    """The saved name of a parameter of a (possibly PEFT-wrapped) model; None for adapter-only tensors."""
    parts = name.split(".")
    if any(p.startswith("lora_") for p in parts) or "original_module" in parts:
        return None
    cleaned = [p for p in parts if p != "base_layer"]
    if "modules_to_save" in cleaned:
        i = cleaned.index("modules_to_save")
        cleaned = cleaned[:i] + cleaned[i + 2 :]
    return ".".join(cleaned)


def gathered(tensors: list[torch.Tensor]) -> contextlib.AbstractContextManager:
    """DeepSpeed ZeRO-3 partitions parameters (they carry ``ds_id``): gather them for reading (collective:
    every process enters it); a no-op for ordinary tensors."""
    partitioned = [t for t in tensors if hasattr(t, "ds_id")]
    if not partitioned:
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(partitioned, modifier_rank=None)
