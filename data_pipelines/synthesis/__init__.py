"""Syn-GRPO sample synthesis: new images of a perception sample with its labelled objects kept pixel for pixel.

A generator takes an image, its foreground boxes and labels, a description of the wanted background and a seed,
and returns an image of the same size whose boxes hold exactly the source's pixels and whose background is new.
The synthesis server (`vlm_rl.synthesis`) runs any object with this `generate` method.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from PIL import Image

from data_pipelines.synthesis.boxes import Box, GeneratorError, check_boxes, foreground_mask
from data_pipelines.synthesis.procedural import ProceduralGenerator

GENERATOR_NAMES: tuple[str, ...] = ("procedural", "diffusers")


class Generator(Protocol):
    name: str

    def generate(
        self, image: Image.Image, boxes: Sequence[Box], labels: Sequence[str], description: str, seed: int
    ) -> Image.Image:
        """An RGB image of `image`'s size: every box's pixels as in `image`, a new background around them.

        GeneratorError for boxes not inside the image or a label count that differs from the box count.
        """
        ...


def make_generator(name: str, *, model_path: str | Path | None = None, device: str | None = None) -> Generator:
    """The generator called `name` (one of GENERATOR_NAMES); `model_path` and `device` are the diffusers pipeline's."""
    if name == "procedural":
        return ProceduralGenerator()
    if name == "diffusers":
        if model_path is None:
            raise GeneratorError("the diffusers generator needs the directory of a local inpainting pipeline")
        from data_pipelines.synthesis.inpainting import DiffusersGenerator

        return DiffusersGenerator(model_path, device=device)
    raise GeneratorError(f"unknown generator {name!r}; choose one of {', '.join(GENERATOR_NAMES)}")


__all__ = [
    "GENERATOR_NAMES", "Box", "Generator", "GeneratorError", "ProceduralGenerator", "check_boxes", "foreground_mask",
    "make_generator",
]
