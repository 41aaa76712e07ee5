"""The CPU generator: a new background drawn from the description's words, the foreground boxes kept.

The description chooses the background: its first colour word (`COLORS`) is the base, its second the accent of
the texture, and its first texture word (`TEXTURE_WORDS`) the pattern; what it leaves out is drawn from the seed.
Background colours are darkened shades, never a colour exactly. Clutter shapes are then scattered, of kinds
(`SHAPES`) and in exact colours that no label names (so "how many red squares" or "where is every circle" keeps
its answer), never touching a foreground box. Finally every box's pixels are copied back from the source, so the labels stay true.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from data_pipelines.synthesis.boxes import Box, box_slices, check_boxes, paste_foreground
from data_pipelines.synthetic.scenes import shape_mask
from data_pipelines.synthetic.vocabulary import COLORS, SHAPES

TEXTURE_WORDS: dict[str, str] = {
    "stripes": "stripes", "striped": "stripes", "stripe": "stripes",
    "dots": "dots", "dotted": "dots", "dot": "dots",
    "grid": "grid", "checks": "grid",
    "noise": "noise", "noisy": "noise",
    "plain": "plain",
}
"""Words of a description that name a background texture, and the texture each names."""
TEXTURES: tuple[str, ...] = ("stripes", "dots", "grid", "noise")
"""Textures drawn when the description names none."""
BASE_SHADE = 0.45
ACCENT_SHADE = 0.8
NOISE_AMPLITUDE = 24
MAX_CLUTTER = 6
PLACEMENT_TRIES = 30


@dataclass(frozen=True)
class BackgroundPlan:
    """What to draw: shades of two colours, a texture, and the exact colours and shapes clutter may take."""

    base: str
    accent: str
    texture: str
    clutter_colors: tuple[str, ...]
    clutter_shapes: tuple[str, ...]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def plan_background(description: str, labels: Sequence[str], rng: np.random.Generator) -> BackgroundPlan:
    """The background the description asks for, with what it leaves open drawn from `rng`."""
    said = words(description)
    named = list(dict.fromkeys(w for w in said if w in COLORS))
    labelled = {w for label in labels for w in words(label) if w in COLORS}
    free = [c for c in COLORS if c not in labelled] or list(COLORS)
    base = named[0] if named else str(rng.choice(free))
    others = [c for c in free if c != base] or [c for c in COLORS if c != base]
    accent = named[1] if len(named) > 1 else str(rng.choice(others))
    texture = next((TEXTURE_WORDS[w] for w in said if w in TEXTURE_WORDS), None) or str(rng.choice(TEXTURES))
    clutter = tuple(c for c in COLORS if c not in labelled and c not in (base, accent))
    named_shapes = {w.removesuffix("s") for label in labels for w in words(label)}
    return BackgroundPlan(base, accent, texture, clutter, tuple(s for s in SHAPES if s not in named_shapes))


class ProceduralGenerator:
    """Redraws the background procedurally; a pure function of its inputs and the seed (thread-safe)."""

    name = "procedural"

    def generate(
        self, image: Image.Image, boxes: Sequence[Box], labels: Sequence[str], description: str, seed: int
    ) -> Image.Image:
        check_boxes(boxes, labels, image.size)
        rng = np.random.default_rng(seed)
        plan = plan_background(description, labels, rng)
        width, height = image.size
        background = _texture(plan, height, width, rng)
        _scatter_clutter(background, plan.clutter_colors, plan.clutter_shapes, boxes, rng)
        return paste_foreground(image, background, boxes)


def _shade(color: str, factor: float) -> np.ndarray:
    return (np.array(COLORS[color], dtype=np.float64) * factor).round().astype(np.int16)


def _texture(plan: BackgroundPlan, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    base, accent = _shade(plan.base, BASE_SHADE), _shade(plan.accent, ACCENT_SHADE)
    out = np.empty((height, width, 3), dtype=np.int16)
    out[:] = base
    ys, xs = np.mgrid[0:height, 0:width]
    period = int(rng.integers(4, max(5, min(height, width) // 4) + 1))
    if plan.texture == "stripes":
        coord = (ys, xs, xs + ys)[int(rng.integers(3))]
        out[(coord // max(1, period // 2)) % 2 == 1] = accent
    elif plan.texture == "dots":
        radius, centre = max(1, period // 4), period // 2
        oy, ox = rng.integers(period, size=2)
        out[((ys + oy) % period - centre) ** 2 + ((xs + ox) % period - centre) ** 2 <= radius**2] = accent
    elif plan.texture == "grid":
        oy, ox = rng.integers(period, size=2)
        out[((ys + oy) % period == 0) | ((xs + ox) % period == 0)] = accent
    elif plan.texture == "noise":
        out += rng.integers(-NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, size=out.shape, dtype=np.int16)
    return np.clip(out, 0, 255).astype(np.uint8)


def _scatter_clutter(
    background: np.ndarray, colors: Sequence[str], shapes: Sequence[str], boxes: Sequence[Box], rng: np.random.Generator
) -> None:
    """Draw up to `MAX_CLUTTER` of `shapes` in `colors`, each at least one pixel away from every box and each other."""
    if not colors or not shapes:
        return
    height, width = background.shape[:2]
    side = min(height, width)
    low, high = max(3, side // 10), max(4, side // 5)
    taken = np.zeros((height, width), dtype=bool)
    for box in boxes:
        rows, cols = box_slices(box)
        taken[max(rows.start - 1, 0) : rows.stop + 1, max(cols.start - 1, 0) : cols.stop + 1] = True
    for _ in range(int(rng.integers(2, MAX_CLUTTER + 1))):
        size = int(rng.integers(low, high + 1))
        if size >= side:
            return
        shape, color = str(rng.choice(shapes)), str(rng.choice(colors))
        for _ in range(PLACEMENT_TRIES):
            y, x = int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))
            if not taken[y : y + size, x : x + size].any():
                background[y : y + size, x : x + size][shape_mask(shape, size)] = COLORS[color]
                taken[max(y - 1, 0) : y + size + 1, max(x - 1, 0) : x + size + 1] = True
                break
