"""The demo's pure helpers: think/answer split, form parsing, frame settings, path guard, uploads, runs, rendering."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from data_pipelines.synthetic.mp4 import write_mp4
from vlm_rl.config import DataConfig
from vlm_rl.demo.completion_view import DIRECT_PREFILL, view_completion
from vlm_rl.demo.examples import ensure_examples
from vlm_rl.demo.frame_strip import video_strip
from vlm_rl.demo.group_view import (
    NO_ANSWER,
    ScoredCompletion,
    agreement_groups,
    render_card,
    render_group,
    reward_notes,
)
from vlm_rl.demo.login_guard import LoginAttempts
from vlm_rl.demo.path_guard import PathGuard
from vlm_rl.demo.prompting import THINK_OR_NOT_SYSTEM, PromptSettings, build_sample, parse_options
from vlm_rl.demo.runs import curve_files, find_runs, logged_samples, run_curves
from vlm_rl.demo.settings import DemoConfig, DemoError, parse_credentials, read_credentials
from vlm_rl.network import is_loopback
from vlm_rl.demo.uploads import check_upload, media_kind
from vlm_rl.media import MediaError, VideoSampling, read_video
from vlm_rl.rewards import extract_think, find_answer

# --- think / answer split ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "<think>I count 3 triangles.</think>\n<answer>3</answer>",
        "<think> a </think><answer> B </answer> trailing",
        "noise <think>x</think> more <answer>y</answer><answer>z</answer>",
    ],
)
def test_closed_blocks_match_the_reward_parsers(text):
    view = view_completion(text)
    assert (view.think, view.answer) == (extract_think(text), find_answer(text))
    assert view.think_closed and view.answer_closed
    assert not view.skipped_thinking


def test_streaming_prefixes_show_the_open_block():
    full = "<think>The circle is red.</think><answer>A</answer>"
    assert view_completion("").think is None
    partial = view_completion("<think>The circ")
    assert (partial.think, partial.think_closed, partial.answer) == ("The circ", False, None)
    cut = view_completion("<think>The circle is red.</think><answer>A")
    assert (cut.think, cut.think_closed, cut.answer, cut.answer_closed) == ("The circle is red.", True, "A", False)
    assert view_completion(full).answer == "A"


def test_unclosed_think_stops_at_the_answer_tag():
    view = view_completion("<think>hmm <answer>C</answer>")
    assert (view.think, view.think_closed, view.answer, view.answer_closed) == ("hmm", False, "C", True)


def test_empty_thought_is_a_skip():
    view = view_completion(DIRECT_PREFILL + "<answer>4</answer>")
    assert view.skipped_thinking and view.think == "" and view.answer == "4"
    assert not view_completion("<think>.</think><answer>4</answer>").skipped_thinking
    assert not view_completion("<answer>4</answer>").skipped_thinking


# --- the form ---------------------------------------------------------------------------------


def test_options_are_labelled_in_order_unless_they_already_are():
    assert parse_options("red\n\n blue \n") == ("A. red", "B. blue")
    assert parse_options("A. red\n(B) blue\nC: green") == ("A. red", "(B) blue", "C: green")
    assert parse_options("Red\nBlue") == ("A. Red", "B. Blue")  # a capital first letter is not a label
    assert parse_options("") == ()


def test_build_sample_types_and_refusals(tmp_path):
    media = tmp_path / "clip.mp4"
    mc = build_sample(media, "video", " Which? ", "red\nblue", " B ")
    assert (mc.problem, mc.problem_type, mc.options, mc.answer, mc.solution) == (
        "Which?",
        "multiple choice",
        ("A. red", "B. blue"),
        "B",
        "<answer>B</answer>",
    )
    assert build_sample(media, "video", "How many?", problem_type="numerical").problem_type == "numerical"
    assert build_sample(media, "image", "What?").problem_type == "free-form"
    assert build_sample(media, "image", "What?", answer="a dog").problem_type == "free-form"
    assert build_sample(media, "video", "How many?", answer=" 1,200 ").problem_type == "numerical"
    assert build_sample(media, "video", "How many?", answer="0").problem_type == "numerical"
    with pytest.raises(DemoError, match="type a question"):
        build_sample(media, "video", "  ")
    with pytest.raises(DemoError, match="needs options"):
        build_sample(media, "video", "Which?", problem_type="multiple choice")
    with pytest.raises(DemoError, match="unknown answer type"):
        build_sample(media, "video", "Which?", problem_type="essay")


def test_prompt_settings_map_onto_the_data_config():
    base = DataConfig()
    by_fps = PromptSettings(1.5, 8, 3136, "think-answer", "short").data_config(base)
    assert (by_fps.video.fps, by_fps.video.nframes, by_fps.video.max_frames) == (1.5, None, 8)
    assert by_fps.video.min_frames == min(base.video.min_frames, 8)
    assert (by_fps.video.min_pixels, by_fps.video.max_pixels) == (3136, 3136)
    assert (by_fps.image.min_pixels, by_fps.image.max_pixels) == (min(base.image.min_pixels, 3136), 3136)
    assert by_fps.prompt_template == "short" and by_fps.system_prompt is None
    fixed = PromptSettings(0, 6, 100352, "think-or-not (TON)", "video_r1_eval").data_config(base)
    assert (fixed.video.fps, fixed.video.nframes) == (None, 6)
    assert fixed.system_prompt == THINK_OR_NOT_SYSTEM
    assert PromptSettings(0, 6, 3136, "direct", "short").prefill == DIRECT_PREFILL
    assert PromptSettings(0, 6, 3136, "think-answer", "short").prefill == ""
    with pytest.raises(DemoError, match="unknown prompt mode"):
        PromptSettings(0, 6, 3136, "cot", "short")
    with pytest.raises(DemoError, match="max frames"):
        PromptSettings(0, 0, 3136, "direct", "short")


def test_prompt_settings_from_a_trained_config():
    data = DataConfig()
    data.prompt_template = "short"
    data.video.fps, data.video.nframes, data.video.max_pixels = None, 4, 3136
    settings = PromptSettings.from_data_config(data)
    assert (settings.fps, settings.max_frames, settings.max_pixels, settings.wording) == (0.0, 4, 3136, "short")
    data.prompt_template = "mmvu_cot"  # not offered: the evaluation wording instead
    assert PromptSettings.from_data_config(data).wording == "video_r1_eval"


def test_logins_come_from_a_file_or_the_environment(tmp_path, monkeypatch):
    assert parse_credentials("ann:s3:cret\n\n  bob:pw  \n", "F") == (("ann", "s3:cret"), ("bob", "pw"))
    for bad in ("ann", ":pw", "ann:", "ok:1\nann-pw-secret"):
        with pytest.raises(DemoError, match=r"F line \d must look like user:password") as error:
            parse_credentials(bad, "F")
        assert "secret" not in str(error.value) and "pw" not in str(error.value), "the message never shows a line"
    with pytest.raises(DemoError, match="F line 2 repeats the user ann"):
        parse_credentials("ann:a\nann:b", "F")
    with pytest.raises(DemoError, match="F holds no user:password line"):
        parse_credentials("\n \n", "F")
    monkeypatch.delenv("VLM_RL_DEMO_AUTH", raising=False)
    assert read_credentials(None) == (), "no file and no variable: no login"
    monkeypatch.setenv("VLM_RL_DEMO_AUTH", "env:pw")
    assert read_credentials(None) == (("env", "pw"),)
    logins = tmp_path / "logins"
    logins.write_text("file:pw\n")
    assert read_credentials(logins) == (("file", "pw"),), "a file wins over the variable"
    with pytest.raises(DemoError, match="--auth-file .*missing cannot be read"):
        read_credentials(tmp_path / "missing")
    assert [is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost", "0.0.0.0", "10.0.0.1", "example.org")] == [
        True, True, True, True, False, False, False,
    ]  # fmt: skip


def test_failed_logins_are_remembered_for_the_window():
    now = [0.0]
    attempts = LoginAttempts(max_failures=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert attempts.wait_s("a") == 0
        attempts.failed("a")
        now[0] += 1
    assert attempts.wait_s("a") == 57 and attempts.wait_s("b") == 0, "counted per address"
    for _ in range(3):
        attempts.failed("b")  # counted when it starts...
        attempts.succeeded("b")  # ...and taken back when it succeeds
    assert attempts.wait_s("b") == 0
    now[0] = 60.5
    assert attempts.wait_s("a") == 0, "the oldest failure has left the window"
    attempts.failed("a")
    assert attempts.wait_s("a") == 0.5, "three failures in the window again (at 1, 2 and 60.5 s)"
    now[0] = 200
    assert attempts.wait_s("a") == 0 and attempts._failures == {}, "old failures are forgotten"


def test_config_validation(tmp_path):
    with pytest.raises(DemoError, match="at least one model"):
        DemoConfig(models=())
    with pytest.raises(DemoError, match="given twice"):
        DemoConfig(models=(tmp_path, tmp_path / "sub" / ".."))
    with pytest.raises(DemoError, match="positive"):
        DemoConfig(models=(tmp_path,), max_upload_mb=0)
    assert DemoConfig(models=(tmp_path,), max_upload_mb=2).max_upload_bytes == 2 * 2**20


# --- path guard and uploads ---------------------------------------------------------------------


def test_path_guard_refuses_anything_outside_its_roots(tmp_path):
    root, outside = tmp_path / "uploads", tmp_path / "secret.txt"
    (root / "sub").mkdir(parents=True)
    inside = root / "sub" / "a.mp4"
    inside.write_bytes(b"x")
    outside.write_text("no")
    guard = PathGuard([root])
    assert guard.check(inside) == inside.resolve()
    for path in (outside, root / ".." / "secret.txt", Path("/etc/passwd")):
        with pytest.raises(DemoError, match="reads only"):
            guard.check(path)
    link = root / "link.mp4"
    os.symlink(outside, link)
    with pytest.raises(DemoError, match="reads only"):
        guard.check(link)
    sibling = tmp_path / "uploads-other" / "b.mp4"  # a shared name prefix is not containment
    sibling.parent.mkdir()
    sibling.write_bytes(b"x")
    with pytest.raises(DemoError):
        guard.check(sibling)


def _clip(path: Path, frames: int = 4, fps: float = 4.0) -> Path:
    rng = np.random.default_rng(0)
    return write_mp4(path, rng.integers(0, 255, (frames, 48, 64, 3), dtype=np.uint8), fps)


def test_check_upload_kinds_sizes_and_durations(tmp_path):
    config = DemoConfig(models=(tmp_path,), max_upload_mb=1, max_video_seconds=1.5)
    assert check_upload(_clip(tmp_path / "short.MP4"), config) == "video"
    with pytest.raises(DemoError, match="lasts 2.0 s; this demo accepts videos up to 1.5 s"):
        check_upload(_clip(tmp_path / "long.mp4", frames=8), config)
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * 2000)
    with pytest.raises(DemoError, match=r"big.png is 0.00191 MB; this demo accepts files up to 0\.001 MB"):
        check_upload(big, DemoConfig(models=(tmp_path,), max_upload_mb=0.001))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(MediaError, match="cannot decode video"):
        check_upload(bad, config)
    with pytest.raises(DemoError, match="not a video or an image"):
        media_kind(Path("notes.txt"))
    assert media_kind(Path("a.JPeG")) == "image"


def test_video_strip_shows_the_sampled_resized_frames(tmp_path):
    clip = read_video(
        _clip(tmp_path / "c.mp4", frames=8), VideoSampling(fps=None, nframes=4, min_pixels=3136, max_pixels=3136)
    )
    items, summary = video_strip(clip)
    assert [caption for _, caption in items] == [f"frame {i} · {i / 4:.2f} s" for i in clip.indices]
    assert all(image.size == (clip.frames.shape[3], clip.frames.shape[2]) for image, _ in items)
    assert np.array_equal(np.asarray(items[1][0]), clip.frames[1].permute(1, 2, 0).numpy())
    assert summary == f"4 of 8 frames (4 fps video), each resized to {clip.frames.shape[3]}x{clip.frames.shape[2]}"


def test_examples_are_written_once_and_decode(tmp_path):
    folder, examples = ensure_examples(tmp_path)
    assert {Path(e.path).suffix for e in examples} == {".mp4", ".png"}
    stamp = (folder / "examples.json").stat().st_mtime_ns
    assert ensure_examples(tmp_path) == (folder, examples)
    assert (folder / "examples.json").stat().st_mtime_ns == stamp
    config = DemoConfig(models=(tmp_path,))
    for example in examples:
        assert check_upload(Path(example.path), config) in ("video", "image")
        assert example.answer and example.question.endswith("?")
    assert sum(f.stat().st_size for f in folder.iterdir()) < 100_000


# --- agreement and rendering ----------------------------------------------------------------------


def test_agreement_groups_most_common_first():
    clusters, groups = agreement_groups(["3", " 3 ", None, "A", "a", "a", ""])
    assert groups == [("a", 3), ("3", 2), (NO_ANSWER, 2)]
    assert clusters == [1, 1, 2, 0, 0, 0, 2]


def _item(reward, text="<think>x</think><answer>1</answer>"):
    return ScoredCompletion("#1", text, view_completion(text), 5, False, 0, {"accuracy": reward}, reward, 0.0)


def test_cards_escape_model_text_and_notes_flag_equal_rewards():
    card = render_card(_item(1.0, "<think><script>alert(1)</script></think><answer>&</answer>"))
    assert "<script>" not in card and "&lt;script&gt;" in card and "&amp;" in card
    assert "reward 1 (accuracy 1)" in card and "advantage +0.000" in card
    notes = reward_notes([_item(1.0), _item(1.0)], {"accuracy": 1.0})
    assert any("every advantage is 0" in n for n in notes)
    assert not any("every advantage is 0" in n for n in reward_notes([_item(1.0), _item(0.0)], {"accuracy": 1.0}))
    assert "correct answer" in reward_notes([_item(None)], {"accuracy": 1.0})[0]
    page = render_group([_item(1.0)], [("1", 1)], ["note"])
    assert page.count('class="vr-card"') == 1 and "note" in page


# --- run browser ---------------------------------------------------------------------------------


def _run(folder: Path, samples: list[dict] | None = None) -> Path:
    folder.mkdir(parents=True)
    lines = [{"step": s, "reward": s / 10, "accuracy": s / 20, "loss": 1 / s} for s in (1, 2, 3)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    if samples is not None:
        (folder / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    return folder


def test_find_runs_curves_and_samples(tmp_path):
    sample = {"sample": "d.json#0", "completion": "<think>a</think><answer>2</answer>", "reward": 1.0, "accuracy": 1.0}
    grpo = _run(
        tmp_path / "runs" / "exp" / "grpo", [{"step": 2, **sample}, {"step": 4, **sample}, {"step": 4, **sample}]
    )
    _run(tmp_path / "runs" / "sft")
    runs = find_runs([tmp_path / "runs"])
    assert runs == {"runs/exp/grpo": grpo, "runs/sft": tmp_path / "runs" / "sft"}
    assert find_runs([grpo]) == {"grpo": grpo}
    with pytest.raises(DemoError, match="does not exist"):
        find_runs([tmp_path / "missing"])
    curves = run_curves(grpo)
    assert sorted(p.name for p in curves) == ["accuracy.png", "loss.png", "reward.png"]
    assert set(curves) <= set(curve_files(grpo)), "the files the demo may serve"
    stamps = [p.stat().st_mtime_ns for p in curves]
    assert run_curves(grpo) == curves and [p.stat().st_mtime_ns for p in curves] == stamps  # up to date: reused
    time.sleep(0.01)
    (grpo / "metrics.jsonl").touch()
    assert [p.stat().st_mtime_ns for p in run_curves(grpo)] != stamps  # newer metrics: drawn again
    logged = logged_samples(grpo)
    assert sorted(logged) == [2, 4] and len(logged[4]) == 2 and logged[2][0] == sample
    assert logged_samples(tmp_path / "runs" / "sft") == {}
    (grpo / "samples.jsonl").write_text('{"completion": "x"}\n')
    with pytest.raises(DemoError, match="line 1 is not a logged sample"):
        logged_samples(grpo)


def test_cli_reports_bad_demo_arguments_in_one_line(tmp_path, capsys):
    from vlm_rl.cli import main

    for argv, message in (
        (["--model", str(tmp_path / "missing")], "model directory"),
        (["--model", str(tmp_path), "--runs", str(tmp_path / "nope")], "run directory"),
        (["--model", str(tmp_path), "--auth", "ann:hunter2"], "--auth is no longer accepted"),
        (["--model", str(tmp_path), "--auth-file", str(tmp_path / "none")], "--auth-file"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["demo", *argv])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("vlm-rl demo: error: ") and message in err and "Traceback" not in err
        assert "hunter2" not in err
