"""Frame selection for `seek_video_frames`: relevance times diversity by a greedy DPP.

Relevance is the cosine of the query's text embedding with each candidate frame's embedding,
min-max normalised over the window. The DPP kernel is L = diag(q) (F F^T) diag(q), and the
greedy fast-MAP algorithm (Chen et al., arXiv:1709.05135) picks k frames from it. With an empty
query the frames are spread uniformly over the window.
"""

from __future__ import annotations

import torch

_RESIDUAL_FLOOR = 1e-10


def minmax_normalise(scores: torch.Tensor) -> torch.Tensor:
    """Scale scores to [0, 1]; a constant vector becomes all ones (every frame equally relevant)."""
    low, high = scores.min(), scores.max()
    if high - low <= 0:
        return torch.ones_like(scores)
    return (scores - low) / (high - low)


def dpp_kernel(relevance: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    """L = diag(q) (F F^T) diag(q) with q the min-max relevance and F the L2-normalised embeddings."""
    features = torch.nn.functional.normalize(embeddings.double(), dim=-1)
    quality = minmax_normalise(relevance.double())
    return quality[:, None] * (features @ features.T) * quality[None, :]


def greedy_map_dpp(kernel: torch.Tensor, k: int) -> list[int]:
    """Greedy fast-MAP DPP: k indices in pick order.

    Each step takes the largest residual diagonal d_j, then removes from every d its projection
    on the picked frame. Once no residual is positive (the rest are duplicates of picked frames or
    have zero relevance) the remaining picks go by the kernel diagonal, largest first.
    """
    size = kernel.shape[0]
    if not 0 < k <= size:
        raise ValueError(f"cannot pick {k} frames out of {size}")
    residual = kernel.diagonal().clone()
    rows = torch.zeros(k, size, dtype=kernel.dtype)
    picked: list[int] = []
    while len(picked) < k:
        best = int(torch.argmax(residual))
        if residual[best] <= _RESIDUAL_FLOOR:
            break
        row = (kernel[best] - rows[: len(picked), best] @ rows[: len(picked)]) / residual[best].sqrt()
        rows[len(picked)] = row
        residual = residual - row**2
        residual[best] = -torch.inf
        picked.append(best)
    if len(picked) < k:
        rest = [i for i in torch.argsort(kernel.diagonal(), descending=True, stable=True).tolist()
                if i not in picked]
        picked += rest[: k - len(picked)]
    return picked


def uniform_frames(num_candidates: int, k: int) -> list[int]:
    """k positions spread evenly over the window (rounded linspace from first to last)."""
    if num_candidates < 1 or k < 1:
        raise ValueError(f"cannot pick {k} frames out of {num_candidates}")
    positions = torch.linspace(0, num_candidates - 1, k, dtype=torch.float64).round().long()
    return positions.tolist()


def select_frames(relevance: torch.Tensor, embeddings: torch.Tensor, k: int) -> list[int]:
    """Positions (within the window, sorted by time) of the k frames to return.

    relevance: [F] raw query-frame similarities; embeddings: [F, D] frame embeddings.
    A window of at most k frames is returned whole.
    """
    if relevance.ndim != 1 or embeddings.ndim != 2 or embeddings.shape[0] != relevance.shape[0]:
        raise ValueError(
            f"relevance must be [F] and embeddings [F, D]; got {tuple(relevance.shape)} "
            f"and {tuple(embeddings.shape)}"
        )
    size = relevance.shape[0]
    if size <= k:
        return list(range(size))
    return sorted(greedy_map_dpp(dpp_kernel(relevance, embeddings), k))


def choose_frames(
    query_embedding: torch.Tensor | None, embeddings: torch.Tensor, k: int
) -> list[int]:
    """Positions of the frames to return; `query_embedding` is None when the query is empty."""
    if query_embedding is None:
        return uniform_frames(embeddings.shape[0], min(k, embeddings.shape[0]))
    features = torch.nn.functional.normalize(embeddings.double(), dim=-1)
    text = torch.nn.functional.normalize(query_embedding.double(), dim=-1)
    return select_frames(features @ text, embeddings, k)
