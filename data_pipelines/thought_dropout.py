"""TON thought dropout for SFT data, as an offline pass over Video-R1 style record files.

TON ("Think or Not? Selective Reasoning via Reinforcement Learning for VLMs", arXiv 2505.16854,
Alg. 1; docs/algorithms.md) replaces, independently per SFT example and with probability
p = 0.5, the content of the thought with the empty thought ``"\\n\\n"``. The SFT model thereby
learns the format of skipping, and the GRPO stage that follows discovers when skipping is safe.

Records are Video-R1 COT records or the synthetic generator's records: the thought is the
``<think>…</think>`` block of the ``process`` field, and the SFT target is
``process + "\\n" + solution`` (`data_pipelines.prompts.sft_target`). Only the think content is
replaced; the ``solution`` (answer) and every other field are left as they are. TON's SFT data is
think-answer data throughout, so a record without a thought is an error, not a pass-through.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# EMPTY_THOUGHT and is_empty_thought are re-exported: the dropped thought and TON's skip test belong together.
from data_pipelines.completion_format import EMPTY_THOUGHT, EMPTY_THOUGHT_CONTENT, THINK_BLOCK, is_empty_thought
from data_pipelines.record_files import iter_records, short, write_records
from data_pipelines.schema import RecordError

DEFAULT_DROP_PROBABILITY = 0.5
"""TON's dropout probability p (paper §5.1; the paper ablates 0.2 and 0.8)."""

THOUGHT_FIELD = "process"
"""The record field holding the ``<think>…</think>`` thought (Video-R1 COT records)."""


@dataclass(frozen=True)
class ThoughtDropoutReport:
    """Counts of one `drop_thoughts_file` pass: `dropped` + `kept` == `total` records."""

    total: int
    dropped: int
    kept: int


def drop_thought(
    record: Mapping[str, Any],
    rng: random.Random,
    probability: float = DEFAULT_DROP_PROBABILITY,
    *,
    label: str = "record",
) -> tuple[dict[str, Any], bool]:
    """Apply TON thought dropout to one record; return ``(new_record, dropped)``.

    Draws ``u = rng.random()`` once per record and drops iff ``u < probability`` (so p = 1 always drops
    and p = 0 never does). A dropped record's ``process`` has its think content replaced by
    `EMPTY_THOUGHT_CONTENT`; text outside the block is kept. The input is not modified and the copy
    keeps the key order. Raises RecordError, prefixed with `label`, when ``process`` is missing, not
    a string, or does not hold exactly one ``<think>…</think>`` block.
    """
    _check_probability(probability)
    if not isinstance(record, Mapping):
        raise RecordError(
            f"{label}: expected a JSON object with a '{THOUGHT_FIELD}' field, got {type(record).__name__}"
        )
    process = record.get(THOUGHT_FIELD)
    if process is None:
        raise RecordError(
            f"{label}: field '{THOUGHT_FIELD}' is missing; TON thought dropout needs a "
            '"<think>…</think>" thought in every record (use the COT split, or add the thoughts first)'
        )
    if not isinstance(process, str):
        raise RecordError(
            f"{label}: field '{THOUGHT_FIELD}' must be a string like \"<think>…</think>\", "
            f"got {type(process).__name__}"
        )
    blocks = list(THINK_BLOCK.finditer(process))
    if len(blocks) != 1:
        what = "no <think>…</think> block" if not blocks else f"{len(blocks)} <think>…</think> blocks"
        raise RecordError(
            f"{label}: field '{THOUGHT_FIELD}' has {what} (got {short(process)}); "
            "TON thought dropout needs exactly one thought per record"
        )
    dropped = rng.random() < probability
    new_record = dict(record)
    if dropped:
        block = blocks[0]
        new_record[THOUGHT_FIELD] = process[: block.start(1)] + EMPTY_THOUGHT_CONTENT + process[block.end(1) :]
    return new_record, dropped


def drop_thoughts_file(
    in_path: str | Path, out_path: str | Path, *, probability: float = DEFAULT_DROP_PROBABILITY, seed: int
) -> ThoughtDropoutReport:
    """Apply `drop_thought` to every record of `in_path` in order, with ``random.Random(seed)``, and write `out_path`.

    `in_path` is a ``.json`` list of records or a ``.jsonl`` file (one record a line); `out_path` must
    have the same suffix and gets the same format. It is written atomically (a temporary file in its
    directory, then os.replace), so it may equal `in_path`. Errors name the file and the record, as
    the Video-R1 reader does: ``"<file> record <i>"`` (0-based) for ``.json``, ``"<file> line <n>"``
    for ``.jsonl``; nothing is written then.
    """
    _check_probability(probability)
    in_path, out_path = Path(in_path), Path(out_path)
    if in_path.suffix not in (".json", ".jsonl"):
        raise ValueError(f"{in_path}: expected a .json or .jsonl record file")
    if out_path.suffix != in_path.suffix:
        raise ValueError(f"{out_path}: the output must have the input's suffix {in_path.suffix!r}")
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    dropped = 0
    for label, _, record in iter_records(in_path):
        new_record, was_dropped = drop_thought(record, rng, probability, label=label)
        records.append(new_record)
        dropped += was_dropped
    write_records(out_path, records)
    return ThoughtDropoutReport(total=len(records), dropped=dropped, kept=len(records) - dropped)


def _check_probability(probability: float) -> None:
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"the dropout probability must lie in [0, 1], got {probability}")
