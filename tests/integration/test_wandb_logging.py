"""trainer.report_to: a Weights & Biases run (offline, read back from its files) holds what metrics.jsonl and
samples.jsonl hold, with the run's config, project, name and tags; a resumed run continues the same wandb run;
"none" writes metrics.jsonl only; a missing wandb package is refused before anything is written."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from vlm_rl.config import ConfigError, RunConfig, to_dict
from vlm_rl.training.grpo import GRPOTrainer
from vlm_rl.training.metrics_log import WANDB_ID_FILE, RunLogger

from overrides import with_overrides  # tests/integration is on sys.path under pytest

BLOCK = 32768  # the .wandb file is a LevelDB-style log: 32 KiB blocks of records with 7-byte headers
FULL, LAST = 1, 4


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path, monkeypatch) -> None:
    """wandb offline and silent, with every folder it would use under tmp_path."""
    for name, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_CONSOLE": "off"}.items():
        monkeypatch.setenv(name, value)
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        folder = tmp_path / "wandb-home" / name.lower()
        folder.mkdir(parents=True)
        monkeypatch.setenv(name, str(folder))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def _records(path: Path):
    """The protobuf records of a .wandb file, in order."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a wandb run file"
    position, pending = 7, b""
    while position + 7 <= len(data):
        if BLOCK - position % BLOCK < 7:  # a block's tail too short for a header is padding
            position += BLOCK - position % BLOCK
            continue
        length, kind = int.from_bytes(data[position + 4:position + 6], "little"), data[position + 6]
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (FULL, LAST):
            yield Record.FromString(pending)
            pending = b""


class OfflineRun:
    """What one offline wandb run wrote into `run_dir/wandb`: its run record, config and history rows."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.run = None
        self.config: dict = {}
        self.history: list[dict] = []
        for record in _records(next(folder.glob("run-*.wandb"))):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                self.run = record.run
                self.config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
            elif kind == "config":
                self.config.update({item.key: json.loads(item.value_json) for item in record.config.update})
            elif kind == "history":
                self.history.append(_history_row(record.history.item))


def _history_row(items) -> dict:
    """One history row; wandb stores a dict value (a table's reference) as one item per nested key."""
    row: dict = {}
    for item in items:
        *parents, key = item.nested_key or [item.key]
        place = row
        for parent in parents:
            place = place.setdefault(parent, {})
        place[key] = json.loads(item.value_json)
    return row


def _offline_runs(run_dir: Path, run_id: str) -> list[OfflineRun]:
    return [OfflineRun(folder) for folder in sorted((run_dir / "wandb").glob(f"offline-run-*-{run_id}"))]


def _train(config: RunConfig) -> GRPOTrainer:
    """Train `config`, then wait for wandb's service to put everything it received on disk."""
    import wandb

    trainer = GRPOTrainer(config)
    trainer.train()
    wandb.teardown()
    return trainer


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _metrics_by_step(run_dir: Path) -> list[dict]:
    """metrics.jsonl with the rows of one step merged (wandb keeps one history row per step)."""
    merged: dict[int, dict] = {}
    for row in _jsonl(run_dir / "metrics.jsonl"):
        merged.setdefault(row["step"], {}).update(row)
    return list(merged.values())


def _metric_rows(history: list[dict]) -> list[dict]:
    """The history rows without wandb's own keys (_step, _runtime, ...) and the samples tables."""
    rows = [{k: v for k, v in row.items() if not k.startswith("_") and k != "samples"} for row in history]
    return [row for row in rows if row]


def test_the_wandb_run_holds_the_logged_metrics_samples_and_config(run_config):
    config = with_overrides(run_config, [
        "trainer.report_to=[tensorboard,wandb]", "trainer.wandb.project=vlm-rl-tests", "trainer.wandb.tags=[tiny,grpo]",
    ])
    _train(config)
    run_dir = Path(config.output_dir)
    run_id = (run_dir / WANDB_ID_FILE).read_text().strip()
    [run] = _offline_runs(run_dir, run_id)

    assert (run.run.run_id, run.run.project, run.run.display_name) == (run_id, "vlm-rl-tests", run_dir.name)
    assert list(run.run.tags) == ["tiny", "grpo"]
    run.config.pop("_wandb", None)
    assert run.config == json.loads(json.dumps(to_dict(config))), "the whole run config is logged"

    metrics = _metrics_by_step(run_dir)
    assert [row["step"] for row in metrics] == [1, 2]
    assert _metric_rows(run.history) == metrics, "each wandb history row is metrics.jsonl's row for that step"
    assert [row["_step"] for row in run.history] == [1, 2]
    assert list((run_dir / "tensorboard").glob("events.*")), "tensorboard is still written beside wandb"

    samples = _jsonl(run_dir / "samples.jsonl")
    for row in run.history:
        table = json.loads((run.folder / "files" / row["samples"]["path"]).read_text())
        logged = [dict(zip(table["columns"], values)) for values in table["data"]]
        assert logged == [sample for sample in samples if sample["step"] == row["_step"]]
        assert logged and table["columns"][:3] == ["step", "sample", "completion"]


def test_a_resumed_run_continues_the_same_wandb_run_and_tensorboard_is_only_written_when_listed(run_config):
    common = ["trainer.report_to=[wandb]", "trainer.sample_every=0"]
    _train(with_overrides(run_config, common))
    run_dir = Path(run_config.output_dir)
    run_id = (run_dir / WANDB_ID_FILE).read_text().strip()
    time.sleep(1.01 - time.time() % 1)  # wandb names an offline run's folder by its start second; two quick runs could share one

    resumed = _train(with_overrides(run_config, [*common, "trainer.steps=3", "trainer.resume=auto"]))
    assert resumed.start_step == 2
    assert (run_dir / WANDB_ID_FILE).read_text().strip() == run_id
    first, second = _offline_runs(run_dir, run_id)
    assert [row["step"] for row in _metric_rows(first.history)] == [1, 2]
    assert _metric_rows(second.history) == _metrics_by_step(run_dir)[2:], "the resumed run logs step 3 under the same id"
    assert second.run.run_id == run_id
    assert not (run_dir / "tensorboard").exists()


def test_report_to_none_writes_metrics_jsonl_only(tmp_path):
    logger = RunLogger(tmp_path / "run", report_to=["none"])
    logger.log(1, {"loss": 0.5})
    logger.log_samples(1, [{"completion": "A"}])
    logger.sync()
    logger.close()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["metrics.jsonl", "samples.jsonl"]
    assert _jsonl(tmp_path / "run" / "metrics.jsonl") == [{"step": 1, "loss": 0.5}]


def test_wandb_listed_but_not_installed_is_refused_before_anything_is_written(run_config, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # what `import wandb` finds when it is not installed
    with pytest.raises(ConfigError, match=r"trainer\.report_to.*pip install wandb"):
        GRPOTrainer(with_overrides(run_config, ["trainer.report_to=[tensorboard,wandb]"]))
    assert not Path(run_config.output_dir).exists()
