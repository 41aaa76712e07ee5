"""Cutting a run's TensorBoard event files back to a step, as a resumed run does with metrics.jsonl.

Each launch writes its own ``events.out.tfevents.*`` file. When a run resumes from step N, events of
steps after N (logged by a launch that was then killed) are dropped from every file, and so is a
record torn by the kill; TensorBoard then shows each step once, as logged by the launch that kept it.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

HEADER = 12  # uint64 length, uint32 masked CRC of the length
FOOTER = 4  # uint32 masked CRC of the data


def truncate_event_files(directory: Path, step: int) -> list[Path]:
    """Rewrite the event files under `directory` without events after `step` or a torn last record;
    returns the files that changed. Files that need no change are left untouched."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.record_writer import RecordWriter

    changed = []
    for path in sorted(directory.glob("events.out.tfevents.*")):
        records, torn = _read_records(path.read_bytes())
        kept = [record for record in records if Event.FromString(record).step <= step]
        if len(kept) == len(records) and not torn:
            continue
        staging = directory / ".rewriting"
        with open(staging, "wb") as handle:
            writer = RecordWriter(handle)
            for record in kept:
                writer.write(record)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, path)
        changed.append(path)
    return changed


def _read_records(data: bytes) -> tuple[list[bytes], bool]:
    """The complete records of an event file's bytes, and whether the file ends in a torn one."""
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    records, offset = [], 0
    while offset < len(data):
        header = data[offset : offset + 8]
        if offset + HEADER > len(data) or struct.unpack("<I", data[offset + 8 : offset + HEADER])[0] != masked_crc32c(header):
            return records, True
        end = offset + HEADER + struct.unpack("<Q", header)[0] + FOOTER
        if end > len(data):
            return records, True
        records.append(data[offset + HEADER : end - FOOTER])
        offset = end
    return records, False
