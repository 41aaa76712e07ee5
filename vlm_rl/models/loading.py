"""Load a policy (and its processor) from a local directory or hub id; LoRA and freezing."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from vlm_rl.config import ModelConfig
from vlm_rl.models.adapter import SUPPORTED_MODEL_TYPES, QwenVLAdapter

_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(ValueError):
    """A model directory cannot be used; the message says which file is missing and what to do."""


def _model_type(path: str) -> str:
    """The model_type of the model at `path` (a local model directory or a hub id); ModelLoadError otherwise."""
    if not path:
        raise ModelLoadError("model.path is empty; set it to a model directory (vlm-rl make-tiny-model DIR builds one)")
    local = Path(path)
    if local.is_dir():
        model_type = _local_model_type(local)
    elif local.exists():
        raise ModelLoadError(f"model.path {path} is a file, not a model directory; point model.path at a saved model's folder")
    elif _is_local_path(path):
        raise ModelLoadError(f"model.path {path} does not exist; point model.path at a saved model's folder")
    else:
        model_type = _hub_model_type(path)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelLoadError(f"{path}: model_type {model_type!r} is not supported; supported: {SUPPORTED_MODEL_TYPES}")
    return model_type


def _local_model_type(local: Path) -> str:
    config_file = local / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(f"model directory {local} has no config.json; point model.path at a saved model")
    if not any((local / name).is_file() for name in _PROCESSOR_FILES):
        raise ModelLoadError(
            f"model directory {local} has no processor ({' / '.join(_PROCESSOR_FILES)}); "
            "save one there with processor.save_pretrained(dir)"
        )
    if not any((local / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelLoadError(
            f"model directory {local} has no tokenizer ({' / '.join(_TOKENIZER_FILES)}); "
            "save one there with processor.save_pretrained(dir) or tokenizer.save_pretrained(dir)"
        )
    try:
        config = json.loads(config_file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{config_file} is not valid JSON ({err}); the model directory is damaged") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{config_file} is not a JSON object; the model directory is damaged")
    return config.get("model_type", "")


def _is_local_path(path: str) -> bool:
    """A path that cannot be a hub id ('name' or 'namespace/name'): absolute, starting with '.' or '~', or deeper."""
    return path.startswith(("/", ".", "~")) or path.count("/") > 1


def _hub_model_type(path: str) -> str:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path).model_type
    except (OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(
            f"model.path {path} is neither a local folder nor a loadable hub model ({reason}); "
            "point model.path at a saved model's folder"
        ) from None


def model_class(model_type: str):
    """The transformers class for a supported model type."""
    import transformers

    return {
        "qwen2_5_vl": transformers.Qwen2_5_VLForConditionalGeneration,
        "qwen2_vl": transformers.Qwen2VLForConditionalGeneration,
    }[model_type]


def load_adapter(path: str) -> QwenVLAdapter:
    """The processor of the model at `path`, wrapped in its family adapter."""
    from transformers import AutoProcessor

    model_type = _model_type(path)
    return QwenVLAdapter(AutoProcessor.from_pretrained(path), model_type)


def load_model(cfg: ModelConfig, *, trainable: bool = True):
    """Load the policy weights described by `cfg` (LoRA and vision freezing applied when trainable)."""
    model_type = _model_type(cfg.path)
    model = model_class(model_type).from_pretrained(
        cfg.path, dtype=_DTYPES[cfg.dtype], attn_implementation=cfg.attn_implementation
    )
    if not trainable:
        model.requires_grad_(False)
        return model.eval()
    if cfg.freeze_vision:
        vision_tower(model).requires_grad_(False)
    if cfg.gradient_checkpointing:
        model.activation_checkpointing_enable()
    if cfg.lora.enabled:
        from peft import LoraConfig, get_peft_model

        targets = _language_modules(model, cfg.lora.target_modules)
        if not targets:
            raise ModelLoadError(
                f"model.lora.target_modules={cfg.lora.target_modules} match no linear layer of the language model; "
                "use names such as q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"
            )
        lora = LoraConfig(
            r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout, target_modules=targets
        )
        model = get_peft_model(model, lora)
    return model


def vision_tower(model) -> torch.nn.Module:
    """The vision encoder of a (possibly peft-wrapped) Qwen-VL model."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.model.visual


def _language_modules(model, names: list[str]) -> list[str]:
    """Full module names of the language model matching `names` (LoRA stays out of the vision tower)."""
    return [
        name
        for name, module in model.named_modules()
        if ".visual." not in f".{name}." and name.rsplit(".", 1)[-1] in names and isinstance(module, torch.nn.Linear)
    ]
