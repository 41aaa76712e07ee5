"""Chat-message files end to end on the tiny model: one SFT step, one GRPO step and `vlm-rl eval`, for the
qwen-vl-utils / TRL, LLaMA-Factory messages and ShareGPT conversations forms, on real mp4 and png media."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from tiny_run import TINY_RUN

from data_pipelines.formats import load_benchmark_samples, record_format
from data_pipelines.prompts import sft_target
from data_pipelines.synthetic.generator import make_dataset
from vlm_rl import cli
from vlm_rl.config import load_config
from vlm_rl.training.grpo import GRPOTrainer
from vlm_rl.training.sft import SFTTrainer

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
FORMS = ("qwen", "llama_factory", "sharegpt")


def user_text(record: dict[str, Any]) -> str:
    return record["problem"] + "".join("\n" + option for option in record["options"])


def assistant_text(record: dict[str, Any]) -> str:
    return record["process"] + "\n" + record["solution"]


def chat_record(record: dict[str, Any], form: str) -> dict[str, Any]:
    """A synthetic Video-R1 record (a clip or a png) written as a chat record of `form`."""
    kind, path = record["data_type"], record["path"]
    if form == "qwen":
        media = {"type": kind, kind: path, **({"nframes": 4} if kind == "video" else {})}
        return {
            "id": f"chat-{record['problem_id']}",
            "messages": [
                {"role": "user", "content": [media, {"type": "text", "text": user_text(record)}]},
                {"role": "assistant", "content": [{"type": "text", "text": assistant_text(record)}]},
            ],
        }
    placeholder = f"<{kind}>"
    if form == "llama_factory":
        turns = [
            {"role": "user", "content": placeholder + user_text(record)},
            {"role": "assistant", "content": assistant_text(record)},
        ]
        return {"messages": turns, f"{kind}s": [path]}
    turns = [{"from": "human", "value": placeholder + user_text(record)}, {"from": "gpt", "value": assistant_text(record)}]
    return {"conversations": turns, f"{kind}s": [path]}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("chat") / "data", n_train=4, n_test=2, seed=0, tasks=("color", "rec"))


def write_form(synthetic, split: str, form: str) -> tuple[Path, list[dict[str, Any]]]:
    source = json.loads(getattr(synthetic, f"{split}_path").read_text())
    path = synthetic.root / f"{split}_{form}.jsonl"
    path.write_text("".join(json.dumps(chat_record(r, form)) + "\n" for r in source), encoding="utf-8")
    return path, source


@pytest.mark.parametrize("form", FORMS)
def test_sft_grpo_and_eval_on_chat_records(form, synthetic, tiny_model_dir, tmp_path, capsys):
    train, source = write_form(synthetic, "train", form)
    test, test_source = write_form(synthetic, "test", form)
    assert record_format(json.loads(train.read_text().splitlines()[0])) == "chat_messages"
    samples = load_benchmark_samples(train)
    assert {s.data_type for s in samples} == {"video", "image"}
    assert [s.answer for s in samples] == [r["solution"][len("<answer>") : -len("</answer>")] for r in source]

    common = [f"model.path={tiny_model_dir}", f"data.train_files=[{train}]", "data.eval_files=[]", *TINY_RUN, "trainer.steps=1"]
    sft = SFTTrainer(load_config(REPO / "configs" / "quickstart_sft.yaml", [*common, f"output_dir={tmp_path / 'sft'}"]))
    for sample, record in zip(sft.train_samples, source):
        ids, _ = sft.target(sample)
        assert sft.adapter.tokenizer.decode(ids) == assistant_text(record) + "<|im_end|>"
        assert sft_target(sample) == assistant_text(record)
        prompt = sft.encoder.text(sample)
        assert prompt.endswith(f"<|vision_end|>{user_text(record)}<|im_end|>\n<|im_start|>assistant\n")
    sft.train()
    sft_rows = [json.loads(line) for line in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert math.isfinite(next(r["loss"] for r in sft_rows if "loss" in r))

    grpo = GRPOTrainer(load_config(REPO / "configs" / "quickstart_grpo.yaml", [*common, f"output_dir={tmp_path / 'grpo'}"]))
    grpo.train()
    grpo_rows = [json.loads(line) for line in (tmp_path / "grpo" / "metrics.jsonl").read_text().splitlines()]
    step = next(r for r in grpo_rows if "reward" in r or "reward/mean" in r)
    assert all(math.isfinite(v) for v in step.values() if isinstance(v, float))

    report = tmp_path / "eval.json"
    config = REPO / "configs" / "quickstart_sft.yaml"
    cli.main(["eval", "--model", str(tiny_model_dir), "--data", str(test), "--config", str(config), "--out", str(report)])
    results = json.loads(report.read_text())["results"]
    assert [r["answer"] for r in results] == [r["solution"][len("<answer>") : -len("</answer>")] for r in test_source]
    assert all(r["error"] is None for r in results)
