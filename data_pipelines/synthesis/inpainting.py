"""The GPU generator: a diffusers inpainting pipeline repaints everything outside the foreground boxes.

The pipeline is read from a local directory (``save_pretrained`` layout, e.g. a Stable Diffusion inpainting
checkpoint already on disk); nothing is downloaded. The description is the prompt. The image is resized to the
pipeline's multiple (the VAE's scale factor) for the pipeline and back afterwards, then every box's pixels are
copied back from the source, so resizing and the VAE's round trip never touch the labelled objects.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from data_pipelines.synthesis.boxes import Box, GeneratorError, check_boxes, foreground_mask, paste_foreground

INSTALL_HINT = "pip install 'vlm-rl[synthesis]' (or pip install diffusers)"


class DiffusersGenerator:
    """Inpaints the background with the pipeline at `model_path`; one image at a time (a pipeline is not re-entrant)."""

    name = "diffusers"

    def __init__(
        self, model_path: str | Path, *, device: str | None = None, steps: int = 25, guidance_scale: float = 7.5
    ) -> None:
        path = Path(model_path).expanduser()
        if not (path / "model_index.json").is_file():
            raise GeneratorError(
                f"{path} is not a diffusers pipeline directory (no model_index.json); "
                "name a local inpainting pipeline saved with save_pretrained"
            )
        if steps < 1:
            raise GeneratorError(f"steps must be at least 1, not {steps}")
        try:
            from diffusers import AutoPipelineForInpainting
            import torch
        except ImportError as err:
            raise GeneratorError(f"the diffusers generator needs the diffusers package ({err}); {INSTALL_HINT}") from None
        self._torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.pipeline: Any = AutoPipelineForInpainting.from_pretrained(path, local_files_only=True).to(self.device)
        except (OSError, ValueError) as err:
            raise GeneratorError(f"{path}: cannot load an inpainting pipeline: {err}") from None
        self.pipeline.set_progress_bar_config(disable=True)
        self.steps = steps
        self.guidance_scale = guidance_scale
        self._lock = threading.Lock()

    def generate(
        self, image: Image.Image, boxes: Sequence[Box], labels: Sequence[str], description: str, seed: int
    ) -> Image.Image:
        check_boxes(boxes, labels, image.size)
        source = image.convert("RGB")
        multiple = int(getattr(self.pipeline, "vae_scale_factor", 8))
        width, height = (max(multiple, round(v / multiple) * multiple) for v in source.size)
        repaint = Image.fromarray(np.where(foreground_mask(source.size, boxes), 0, 255).astype(np.uint8), "L")
        with self._lock:
            result = self.pipeline(
                prompt=description,
                image=source.resize((width, height), Image.Resampling.BICUBIC),
                mask_image=repaint.resize((width, height), Image.Resampling.NEAREST),
                height=height,
                width=width,
                num_inference_steps=self.steps,
                guidance_scale=self.guidance_scale,
                generator=self._torch.Generator(device="cpu").manual_seed(seed),
            ).images[0]
        background = np.asarray(result.convert("RGB").resize(source.size, Image.Resampling.BICUBIC))
        return paste_foreground(source, background, boxes)
