"""`vlm-rl eval --benchmark`: SEED-Bench-R1 and MMVU on small fixtures in the record shapes and folder
layouts the datasets ship (tiny real mp4/png files), failures kept in the denominator and reported in one
line, an LLM judge over loopback, and an evaluation killed mid-way that resumes to the same report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_pipelines.synthetic.generator import make_dataset
from data_pipelines.synthetic.mp4 import write_mp4
from vlm_rl.cli import main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FAST = ["data.video.min_pixels=3136", "data.video.max_pixels=3136", "data.image.max_pixels=3136", "eval.max_new_tokens=4"]
QUESTION = "Considering the progress shown in the video and my current observation shown in the image, what action should I take next in order to {goal}?"


def _clip(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(path, np.random.default_rng(seed).integers(0, 255, (4, 56, 56, 3), dtype=np.uint8), 4.0)


def _png(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (56, 56, 3), dtype=np.uint8)).save(path)


@pytest.fixture(scope="module")
def seed_bench_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("SEED-Bench-R1")
    domains = {"L1": [None, None, None], "L2": [None, None], "L3": ["Hobbies", "Work", "Hobbies"]}
    for level, level_domains in domains.items():
        rows = []
        for i, domain in enumerate(level_domains):
            name = f"{level}_{i}"
            _clip(root / "videos" / "Ego4D" / f"{name}.mp4", i)
            _png(root / "images" / "Ego4D" / f"{name}.png", i)
            row = {
                "sample_id": name, "video_source": "Ego4D", "video_basename": f"{name}.mp4",
                "current_observation_basename": f"{name}.png", "question": QUESTION.format(goal="repot the plant"),
                "choice_a": "water plant", "choice_b": "put soil in pot", "choice_c": "pick up trowel",
                "choice_d": "remove plant from pot", "golden_choice_idx": "ABCD"[i % 4], "answer": "water plant",
                "task_progress_metadata": [] if i == 1 else [{"narration_text": "pick up pot", "start_frame": 3, "stop_frame": 9}],
            }
            if domain:
                row["domain"] = domain
            rows.append(row)
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"validation_{level}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "videos" / "Ego4D" / "L1_2.mp4").write_bytes(b"not an mp4 at all" * 64)  # undecodable: a failed item
    return root


@pytest.fixture(scope="module")
def mmvu_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("MMVU")
    url = "https://huggingface.co/datasets/yale-nlp/MMVU/resolve/main/videos/{}/{}.mp4"
    rows = []
    for i, (subject, kind) in enumerate([("Mechanics", "multiple-choice"), ("Art", "multiple-choice"), ("Art", "open-ended")]):
        _clip(root / "videos" / subject / f"{i}.mp4", i)
        mc = kind == "multiple-choice"
        rows.append({
            "id": f"validation_{i}", "video": url.format(subject, i), "youtube_url": "https://www.youtube.com/watch?v=x",
            "question_type": kind, "metadata": {"subject": subject, "textbook": "t", "knowledge": [], "rationale": "r"},
            "question": "Which quantity is conserved during the collision shown in the video?",
            "choices": {k: (f"option {k}" if mc else "") for k in "ABCDE"}, "answer": "B" if mc else "linear momentum",
        })
    (root / "validation.json").write_text(json.dumps(rows))
    return root


def test_seed_bench_r1_levels_domains_failures_and_markdown(seed_bench_root, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    main(["eval", "--model", str(tiny_model_dir), "--benchmark", "seed-bench-r1", "--data-root", str(seed_bench_root),
          "--out", str(out), *FAST])
    reports = {level: json.loads((out / f"seed_bench_r1_{level}.json").read_text()) for level in ("L1", "L2", "L3")}
    assert {level: r["n"] for level, r in reports.items()} == {"L1": 3, "L2": 2, "L3": 3}
    l1 = reports["L1"]
    assert l1["failures"] == 1, "the undecodable clip is one failed item"
    failed = [r for r in l1["results"] if r["error"]]
    assert len(failed) == 1 and failed[0]["sample_id"] == "L1_2" and failed[0]["reward"] == 0.0 and "L1_2.mp4" in failed[0]["error"]
    for report in reports.values():
        assert {"accuracy_strict", "accuracy_lenient", "by_group"} <= report.keys()
        assert report["settings"]["scoring"] == "strict" and report["settings"]["temperature"] == 0.1
        assert report["settings"]["data_settings"]["video"]["max_frames"] == 16
        assert report["settings"]["prompt_template"] == "video_r1_eval"
    assert set(reports["L3"]["by_group"]["domain"]) == {"Hobbies", "Work"}
    assert reports["L3"]["by_group"]["domain"]["Hobbies"]["n"] == 2
    table = (out / "seed-bench-r1.md").read_text()
    assert "| accuracy: domain=Hobbies |" in table and "seed_bench_r1_L3" in table
    assert "accuracy, lenient letter match" in (out / "seed_bench_r1_L1.md").read_text()
    assert "failures 1" in capsys.readouterr().out


def test_undecodable_clip_is_one_stderr_line_naming_the_file_and_the_fix(seed_bench_root, tiny_model_dir, tmp_path, capfd):
    main(["eval", "--model", str(tiny_model_dir), "--benchmark", "seed-bench-r1", "--data-root", str(seed_bench_root),
          "--levels", "L1", "--out", str(tmp_path / "eval"), *FAST])
    err = capfd.readouterr().err
    (line,) = [line for line in err.replace("\r", "\n").splitlines() if "L1_2.mp4" in line]
    assert line.startswith(f"{seed_bench_root / 'annotations' / 'validation_L1.jsonl'}#3: cannot decode video ")
    assert "re-encode it (e.g. `ffmpeg" in line and line.endswith("(counted wrong)")
    assert "ERROR opening" not in err and "moov atom not found" not in err, "the decoder's own lines are dropped"


def test_mmvu_mc_takes_only_multiple_choice_items_per_subject(mmvu_root, tiny_model_dir, tmp_path):
    out = tmp_path / "mmvu"
    main(["eval", "--model", str(tiny_model_dir), "--benchmark", "mmvu", "--data-root", str(mmvu_root), "--out", str(out), *FAST])
    report = json.loads((out / "mmvu_mc.json").read_text())
    assert report["n"] == 2 and set(report["by_group"]["subject"]) == {"Art", "Mechanics"}
    disciplines = report["by_group"]["discipline"]
    assert set(disciplines) == {"Science", "Humanities and Social Science"}
    assert [disciplines[d]["n"] for d in sorted(disciplines)] == [1, 1]
    assert report["settings"]["prompt_template"] == "video_r1_eval"


class _Judge(BaseHTTPRequestHandler):
    """An OpenAI-compatible judge: says 'correct' for every item whose ground truth is 'B'."""

    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        correct = "Ground Truth Answer: B" in body["messages"][-1]["content"]
        content = json.dumps({"extracted_answer": "B" if correct else "x", "correct": correct})
        reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


def test_mmvu_official_scores_through_a_judge_on_loopback(mmvu_root, tiny_model_dir, tmp_path, monkeypatch, capsys):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("VLM_RL_JUDGE_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
    monkeypatch.setenv("VLM_RL_JUDGE_MODEL", "local-judge")
    _Judge.requests = []
    try:
        out = tmp_path / "official"
        main(["eval", "--model", str(tiny_model_dir), "--benchmark", "mmvu", "--data-root", str(mmvu_root), "--mode", "official",
              "--out", str(out), *FAST])
    finally:
        server.shutdown()
    report = json.loads((out / "mmvu_official.json").read_text())
    assert report["n"] == 3 and report["settings"]["scoring"] == "judge" and report["settings"]["prompt_template"] == "mmvu_cot"
    judged = [r for r in report["results"] if r["scoring"] == "judge"]
    assert len(judged) == len(_Judge.requests) >= 1 and all(b["model"] == "local-judge" for b in _Judge.requests)
    for item in judged:
        assert item["reward"] == (1.0 if item["answer"] == "B" else 0.0)
    assert report["accuracy_strict"] is None and report["accuracy_lenient"] is None, "one verdict, reported once"
    assert all(r["reward_strict"] is None and r["reward_lenient"] is None for r in report["results"])
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "accuracy" in line]
    assert f"judge accuracy {report['accuracy']:.4f} (rule check, then LLM judge: one verdict per item)" in line
    assert "strict" not in line and "lenient" not in line
    table = (out / "mmvu_official.md").read_text()
    assert "| scoring | judge |" in table and "| accuracy, strict letter match | - |" in table


def _run_eval(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen([sys.executable, "-m", "vlm_rl.cli", "eval", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_evaluation_resumes_to_the_same_report(tiny_model_dir, tmp_path):
    data = make_dataset(tmp_path / "data", n_train=1, n_test=24, seed=3, tasks=["count"])
    common = ["--model", str(tiny_model_dir), "--data", str(data.test_path), "--config", "configs/quickstart_sft.yaml",
              "eval.batch_size=1", "eval.max_new_tokens=32"]
    killed = tmp_path / "killed.json"
    items = killed.with_suffix(".items.jsonl")
    proc = _run_eval([*common, "--out", str(killed)])
    deadline = time.time() + 120
    while time.time() < deadline and (not items.is_file() or len(items.read_text().splitlines()) < 6):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the evaluation was killed before it finished"
    partial = len(items.read_text().splitlines()) - 1
    assert 5 <= partial < 24 and not killed.exists()

    resumed = _run_eval([*common, "--out", str(killed)])
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()[-2000:]
    fresh_path = tmp_path / "fresh.json"
    fresh = _run_eval([*common, "--out", str(fresh_path)])
    assert fresh.wait(timeout=300) == 0
    a, b = json.loads(killed.read_text()), json.loads(fresh_path.read_text())
    assert [r["origin"] for r in a["results"]] == [r["origin"] for r in b["results"]]
    assert [r["output"] for r in a["results"]] == [r["output"] for r in b["results"]]
    assert (a["n"], a["accuracy"], a["mean_length"]) == (b["n"], b["accuracy"], b["mean_length"])
    assert len(items.read_text().splitlines()) == 25, "every item once, after the settings line"

    other = _run_eval([*common, "--out", str(killed), "eval.max_new_tokens=8"])
    assert other.wait(timeout=300) == 2
    assert "other settings" in other.stderr.read()


def test_compare_prints_reports_side_by_side(seed_bench_root, tiny_model_dir, tmp_path, capsys):
    data = make_dataset(tmp_path / "data", n_train=1, n_test=3, seed=4, tasks=["count"])
    paths = []
    for tokens in (4, 8):
        paths.append(tmp_path / f"r{tokens}.json")
        main(["eval", "--model", str(tiny_model_dir), "--data", str(data.test_path), "--config", "configs/quickstart_sft.yaml",
              "--out", str(paths[-1]), f"eval.max_new_tokens={tokens}"])
    capsys.readouterr()
    main(["eval", "--compare", *map(str, paths)])
    table = capsys.readouterr().out
    assert table.startswith("| metric | r4 | r8 |") and "| records | 3 | 3 |" in table
