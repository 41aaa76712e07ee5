"""Frame and query embeddings for `seek_video_frames` relevance, and a cache of frame embeddings.

Two scorers, by name in `SCORERS`: ``colors`` (built in: colour histograms against the synthetic
videos' palette, no weights needed) and ``siglip`` (any local SigLIP or CLIP checkpoint).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from data_pipelines.synthetic.vocabulary import BACKGROUND, COLORS
from vlm_rl.rollout.frame_search.frames import SearchVideo


class FrameScorer(Protocol):
    """Embeds frames and queries into one space; relevance is their cosine."""

    def embed_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``[T, 3, H, W]`` RGB frames -> float ``[T, D]``."""
        ...

    def embed_text(self, query: str) -> torch.Tensor:
        """A text query -> float ``[D]``."""
        ...


COLOR_TOLERANCE = 60.0
"""Largest RGB distance at which a pixel still counts as showing a palette colour."""


class ColorScorer:
    """Colour histograms over `COLORS` plus a background bin (D = len(COLORS) + 1).

    A frame's embedding is the fraction of its pixels whose nearest palette colour (the background
    colour included) is colour c and lies within `COLOR_TOLERANCE`; every other pixel goes to the
    background bin. A query embeds as the multi-hot vector of the colour names it mentions. A query
    naming no known colour embeds as ones on every colour bin and zero on the background, so the
    frames showing the most coloured (non-background) pixels rank first.
    """

    names: tuple[str, ...] = tuple(COLORS)

    def __init__(self, batch_size: int = 8) -> None:
        self.batch_size = batch_size
        self.palette = torch.tensor([*COLORS.values(), BACKGROUND], dtype=torch.float32)

    def embed_frames(self, frames: torch.Tensor) -> torch.Tensor:
        _check_frames(frames)
        return torch.cat([self._histograms(batch) for batch in frames.split(self.batch_size)])

    def _histograms(self, frames: torch.Tensor) -> torch.Tensor:
        pixels = frames.float().flatten(2)
        squared = (
            pixels.square().sum(1, keepdim=True)
            - 2 * torch.einsum("bcn,pc->bpn", pixels, self.palette)
            + self.palette.square().sum(1)[None, :, None]
        )
        nearest, bins = squared.min(1)
        background = len(self.names)
        bins = torch.where(nearest <= COLOR_TOLERANCE**2, bins, background)
        counts = torch.nn.functional.one_hot(bins, background + 1).sum(1)
        return counts.float() / pixels.shape[-1]

    def embed_text(self, query: str) -> torch.Tensor:
        words = set(re.findall(r"[a-z]+", query.lower()))
        named = torch.tensor([name in words for name in self.names], dtype=torch.float32)
        if not named.any():
            named = torch.ones(len(self.names))
        return torch.cat([named, torch.zeros(1)])


_MODEL_TYPES = ("siglip", "siglip2", "clip")


class SiglipScorer:
    """L2-normalised `get_image_features` / `get_text_features` of a local SigLIP or CLIP checkpoint."""

    def __init__(self, path: str | Path, device: str | torch.device = "cpu", batch_size: int = 32) -> None:
        from transformers import AutoConfig, AutoModel, AutoProcessor

        if not Path(path).is_dir():
            raise ValueError(
                f"scorer checkpoint {path} is not a directory; set search.scorer_path to a local "
                "SigLIP or CLIP checkpoint directory"
            )
        if not (Path(path) / "config.json").is_file():
            raise ValueError(
                f"scorer checkpoint {path} has no config.json; point search.scorer_path at a "
                "SigLIP or CLIP checkpoint saved with save_pretrained"
            )
        model_type = getattr(AutoConfig.from_pretrained(path), "model_type", None)
        if model_type not in _MODEL_TYPES:
            raise ValueError(
                f"scorer checkpoint {path} is a {model_type!r} model, not one of {_MODEL_TYPES}; "
                "point search.scorer_path at a SigLIP or CLIP checkpoint"
            )
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = AutoModel.from_pretrained(path).to(self.device).eval()
        self.processor = AutoProcessor.from_pretrained(path)

    @torch.no_grad()
    def embed_frames(self, frames: torch.Tensor) -> torch.Tensor:
        _check_frames(frames)
        embedded = []
        for batch in frames.split(self.batch_size):
            inputs = self.processor(images=list(batch), return_tensors="pt").to(self.device)
            embedded.append(_features(self.model.get_image_features(**inputs)))
        return torch.nn.functional.normalize(torch.cat(embedded).float(), dim=-1).cpu()

    @torch.no_grad()
    def embed_text(self, query: str) -> torch.Tensor:
        inputs = self.processor(text=[query], padding="max_length", truncation=True, return_tensors="pt")
        features = _features(self.model.get_text_features(**inputs.to(self.device)))
        return torch.nn.functional.normalize(features[0].float(), dim=-1).cpu()


def _features(output: Any) -> torch.Tensor:
    """The pooled features, whether the model returns a tensor or an output with `pooler_output`."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _check_frames(frames: torch.Tensor) -> None:
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be uint8 [T, 3, H, W], got {frames.dtype} {tuple(frames.shape)}")


def _colors(path: str | None) -> ColorScorer:
    if path is not None:
        raise ValueError(f"the colors scorer takes no checkpoint, got scorer path {path!r}; drop search.scorer_path")
    return ColorScorer()


def _siglip(path: str | None) -> SiglipScorer:
    if path is None:
        raise ValueError(
            "the siglip scorer needs a checkpoint: set search.scorer_path to a local SigLIP/CLIP directory"
        )
    return SiglipScorer(path)


SCORERS: dict[str, Callable[[str | None], FrameScorer]] = {"colors": _colors, "siglip": _siglip}


def make_scorer(name: str, path: str | None = None) -> FrameScorer:
    """The scorer registered as `name`, loaded from `path` where it needs a checkpoint."""
    if name not in SCORERS:
        raise ValueError(f"unknown frame scorer {name!r}; choose one of {sorted(SCORERS)}")
    return SCORERS[name](path)


@dataclass
class _Embedded:
    done: torch.Tensor
    values: torch.Tensor | None = None


class ScoredFrames:
    """A scorer with an LRU of frame embeddings per video, each frame embedded at most once.

    Entries are keyed by `SearchVideo.key` and filled lazily (only the frames a window asks for);
    at most `max_videos` videos are kept. `computed` and `reused` count frame embeddings made and
    served from the cache. Thread-safe; two threads missing the same frame both embed it.
    """

    def __init__(self, scorer: FrameScorer, max_videos: int = 256) -> None:
        if max_videos < 1:
            raise ValueError(f"max_videos must be >= 1, got {max_videos}")
        self.scorer = scorer
        self.max_videos = max_videos
        self.computed = 0
        self.reused = 0
        self._entries: OrderedDict[Hashable, _Embedded] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def embed_text(self, query: str) -> torch.Tensor:
        return self.scorer.embed_text(query)

    def frame_embeddings(self, video: SearchVideo, indices: Sequence[int]) -> torch.Tensor:
        """Float ``[len(indices), D]`` embeddings of the cache frames `indices` of `video`."""
        indices = list(indices)
        if not indices:
            raise ValueError(f"no frame indices asked of {video.path}")
        with self._lock:
            entry = self._entry(video)
            missing = sorted({i for i in indices if not entry.done[i]})
            self.computed += len(missing)
            self.reused += len(indices) - len(missing)
        if missing:
            new = self.scorer.embed_frames(video.frames[missing]).float().cpu()
            if new.ndim != 2 or new.shape[0] != len(missing):
                raise ValueError(
                    f"{type(self.scorer).__name__}.embed_frames gave {tuple(new.shape)} for {len(missing)} frames"
                )
            with self._lock:
                if entry.values is None:
                    entry.values = torch.zeros(video.num_frames, new.shape[1])
                entry.values[missing] = new
                entry.done[missing] = True
        with self._lock:
            return entry.values[indices].clone()

    def _entry(self, video: SearchVideo) -> _Embedded:
        entry = self._entries.get(video.key)
        if entry is None:
            entry = self._entries[video.key] = _Embedded(torch.zeros(video.num_frames, dtype=torch.bool))
            while len(self._entries) > self.max_videos:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(video.key)
        return entry
