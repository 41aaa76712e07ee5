"""`vlm-rl demo` driven in headless Chromium: login, upload an mp4, answer, frame strip, think/answer split, bad
upload, runs; and a frame search shown turn by turn.

Chromium is Debian's (`/usr/bin/chromium`; scripts/test.sh installs it): Playwright's own browser download cannot
work on these machines. The test fails, never skips, when it is missing.

The model is the tiny random one with a `sequence_bias` in its generation config that makes it write SCRIPT
whatever it is shown (each prefix of the script outbids the shorter ones), so the panels can be checked exactly.
A random model never calls the search tool, so the frame-search test serves the demo in this process over a
scripted engine (`scripted_engine.py`) that plays SEARCH_SCRIPT turn by turn.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from data_pipelines.synthetic.mp4 import write_mp4
from data_pipelines.synthetic.scenes import Difficulty, make_instance
from vlm_rl.config import DataConfig
from vlm_rl.demo.completion_view import DIRECT_PREFILL
from vlm_rl.media import VideoSampling, read_video

from scripted_engine import ScriptedEngine  # tests/integration is on sys.path under pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]
SCRIPT = "<think>I count 2 circles.</think>\n<answer>2</answer>"
SEARCH_CALL = '{"name": "seek_video_frames", "arguments": {"query": "red circle", "start_time": 0, "end_time": 1, "num_frames": 2}}'
SEARCH_SCRIPT = [
    f"<think>Look at the first second.</think><tool_call>{SEARCH_CALL}</tool_call>",
    '<think>Zoom in.</think><tool_call>{"name": "zoom", "arguments": {}}</tool_call>',
    "<think>I saw two circles.</think><answer>2</answer>",
]
LOGGED = {
    "sample": "train.json#3",
    "completion": "<think>I count 2 circles.</think>\n<answer>2</answer>",
    "reward": 1.0,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_served(url: str, server: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"vlm-rl demo exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"vlm-rl demo did not serve {url} within {timeout} s:\n{log.read_text()}")


def _scripted_model(tiny_model_dir: Path, folder: Path) -> Path:
    """A copy of the tiny model whose greedy and sampled output is always SCRIPT followed by <|im_end|>."""
    from transformers import AutoTokenizer

    shutil.copytree(tiny_model_dir, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer(SCRIPT, add_special_tokens=False)["input_ids"] + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    config = json.loads((folder / "generation_config.json").read_text())
    config["sequence_bias"] = [[ids[: k + 1], 100.0 * (k + 1)] for k in range(len(ids))]
    (folder / "generation_config.json").write_text(json.dumps(config))
    return folder


def _make_inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A 4-frame synthetic mp4, an undecodable "mp4", and a run folder with curves and logged samples."""
    instance = make_instance("count", np.random.default_rng(3), Difficulty())
    video = write_mp4(tmp_path / "tiny.mp4", instance.frames, 4.0)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video\n" * 8)
    run = tmp_path / "runs" / "exp"
    run.mkdir(parents=True)
    metrics = [{"step": s, "reward": s / 4, "accuracy": s / 8, "loss": 1 / s} for s in (1, 2, 3, 4)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    (run / "samples.jsonl").write_text("".join(json.dumps({"step": 4, **LOGGED}) + "\n" for _ in range(2)))
    return video, bad, run


def _expected_captions(video: Path) -> tuple[list[str], str]:
    """Captions and frame size of what the model sees under a config-less model's defaults (DataConfig())."""
    v = DataConfig().video
    sampling = VideoSampling(
        fps=v.fps, nframes=v.nframes, min_frames=v.min_frames, max_frames=v.max_frames,
        min_pixels=v.min_pixels, max_pixels=v.max_pixels, total_pixels=v.total_pixels,
    )  # fmt: skip
    clip = read_video(video, sampling)
    captions = [f"frame {i} · {i / clip.source_fps:.2f} s" for i in clip.indices]
    return captions, f"{clip.frames.shape[3]}x{clip.frames.shape[2]}"


def _log_in(browser, url: str):
    """A page of the demo at `url`, logged in as ann."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.get_by_label("username").fill("ann")
    page.get_by_label("password").fill("test-secret")
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#answer-btn")
    return page


def _upload(page, path: Path) -> None:
    page.set_input_files("#upload input[type=file]", str(path))
    page.locator("#upload").get_by_text(path.stem).first.wait_for(timeout=30_000)


def _answer_and_wait(page, expect_in_stats: str) -> None:
    page.click("#answer-btn")
    page.wait_for_function(
        "t => (document.querySelector('#stats')?.innerText || '').includes(t)", arg=expect_in_stats, timeout=60_000
    )


def _panels(page) -> tuple[str, str, str]:
    return (
        page.input_value("#think textarea"),
        page.input_value("#answer-out textarea"),
        page.input_value("#raw textarea"),
    )


@pytest.mark.slow
def test_demo_in_headless_chromium(tiny_model_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh installs it)"
    video, bad, run = _make_inputs(tmp_path)
    model = _scripted_model(tiny_model_dir, tmp_path / "models" / "scripted")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = tmp_path / "server.log"
    env = {**os.environ, "GRADIO_TEMP_DIR": str(tmp_path / "gradio"), "GRADIO_ANALYTICS_ENABLED": "False"}
    env["VLM_RL_DEMO_AUTH"] = "ann:test-secret"
    command = [sys.executable, "-m", "vlm_rl.cli", "demo", "--model", str(model), "--port", str(port)]
    command += ["--runs", str(run.parent), "--cache-dir", str(tmp_path / "cache")]
    with open(log, "w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_until_served(url, server, log)
        with pytest.raises(urllib.error.HTTPError, match="401"):  # the app's config needs the login
            urllib.request.urlopen(url + "config", timeout=10)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = _log_in(browser, url)

            # Upload the mp4, ask, and wait for the streamed answer to finish.
            _upload(page, video)
            page.fill("#question textarea", "How many circles are in the video?")
            page.fill("#max-tokens input[type=number]", "16")
            page.locator("#max-tokens input[type=number]").press("Enter")
            _answer_and_wait(page, "tokens in")
            assert "Answered by" in page.inner_text("#status")

            # The strip shows every sampled frame, resized, with its index and time.
            captions, size = _expected_captions(video)
            assert page.locator("#frames .caption-label").all_inner_texts() == captions
            assert page.locator("#frames img").count() == len(captions)
            assert f"resized to {size}" in page.inner_text("#frames")

            # The panels are the split of the raw output; the stats count the tokens (the script and its EOS).
            think, answer, raw = _panels(page)
            assert (raw, think, answer) == (SCRIPT, "I count 2 circles.", "2")
            stats = page.inner_text("#stats")
            assert stats.startswith("13 tokens in") and "finished" in stats and "thinking: yes" in stats
            page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)

            # Sample G against the right answer: four equal rewards (accuracy 1 + format 1), so no learning signal.
            page.fill("#answer-in textarea", "2")
            page.get_by_role("tab", name="Sample G").click()
            box = page.locator("#group-size input[type=number]")
            slider = "() => document.querySelector('#group-size input[type=range]')?.value"
            deadline = time.monotonic() + 60
            while page.evaluate(slider) != "4":  # the slider takes a typed value when its box loses focus
                assert time.monotonic() < deadline, "the group-size slider never took the typed 4"
                box.fill("4")
                box.press("Tab")
                page.wait_for_timeout(500)
            page.click("#sample-btn")
            page.locator("#group .vr-card").first.wait_for(timeout=60_000)
            assert page.locator("#group .vr-card").count() == 4
            group = page.inner_text("#group")
            assert group.count("reward 2 (accuracy 1, format 1)") == 4 and group.count("advantage +0.000") == 4
            assert "every advantage is 0" in group
            page.get_by_role("tab", name="Answer").click()

            # Direct mode: the answer starts with TON's empty thought, shown as skipped thinking.
            page.locator("#mode").get_by_text("direct").click()
            _answer_and_wait(page, "thinking: skipped")
            assert _panels(page) == ("", "2", DIRECT_PREFILL + SCRIPT)

            # A logged completion in the run browser: think and answer parts, curves drawn from metrics.jsonl.
            page.get_by_role("tab", name="Runs").click()
            page.click("#run input")
            page.get_by_role("option", name="runs/exp").click()
            page.wait_for_selector("#run-samples .vr-card", timeout=30_000)
            assert page.locator("#run-curves img").count() == 3
            card = page.locator("#run-samples .vr-card").first.inner_text()
            assert "I count 2 circles." in card and "reward 1" in card

            # A file that is not a video: a visible one-line error, no traceback, no server path.
            page.get_by_role("tab", name="Answer").click()
            page.locator("#upload").get_by_label("Clear").click()
            _upload(page, bad)
            page.click("#answer-btn")
            error = page.locator("#status .vr-error")
            error.wait_for(timeout=30_000)
            message = error.inner_text()
            assert message.startswith("Error: cannot decode video bad.mp4") and "gradio" not in message
            assert "Traceback" not in page.content()
            assert page.locator("#frames img").count() == 0
            page.screenshot(path=str(tmp_path / "demo-bad-upload.png"), full_page=True)
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    assert (tmp_path / "demo.png").stat().st_size > 10_000


def _set_slider(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Tab")  # the slider takes a typed value when its box loses focus
    page.wait_for_function(
        "([id, v]) => document.querySelector(`#${id} input[type=range]`)?.value === v", arg=[elem_id, str(value)], timeout=30_000
    )


def _search_and_wait(page, expect_in_totals: str) -> str:
    page.click("#search-btn")
    page.wait_for_function(
        "t => (document.querySelector('#search-totals')?.innerText || '').includes(t)", arg=expect_in_totals, timeout=60_000
    )
    return page.inner_text("#search-totals")


@pytest.mark.slow
def test_frame_search_in_headless_chromium(tiny_model_dir, tmp_path, monkeypatch):
    from playwright.sync_api import sync_playwright

    from vlm_rl.demo.app import launch
    from vlm_rl.demo.model_runner import DemoModel
    from vlm_rl.demo.settings import DemoConfig
    from vlm_rl.models.loading import load_adapter

    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh installs it)"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    video, _, _ = _make_inputs(tmp_path)
    engine = ScriptedEngine(load_adapter(str(tiny_model_dir)), [[SEARCH_SCRIPT]])
    config = DemoConfig(
        models=(tiny_model_dir,), port=_free_port(), auth=(("ann", "test-secret"),), cache_dir=tmp_path / "cache"
    )
    blocks = launch(config, [DemoModel(tiny_model_dir, "scripted", engine=engine)], block=False)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = _log_in(browser, f"http://127.0.0.1:{config.port}/")
            _upload(page, video)
            page.fill("#question textarea", "How many circles are in the video?")
            page.get_by_role("tab", name="Frame search").click()

            # Two turns allowed: the call and the unusable call, then the turn limit ends the search.
            _set_slider(page, "search-turns", 2)
            totals = _search_and_wait(page, "turn limit")
            assert "2 turns" in totals and "final answer" not in totals
            assert page.locator("#search-turn-2").count() == 1 and page.locator("#search-turn-3").count() == 0

            # Three turns: the script answers on its third.
            _set_slider(page, "search-turns", 3)
            totals = _search_and_wait(page, "answered")
            for part in ("3 turns", "1 tool call", "1 parse error", "2 frames returned", "final answer: 2"):
                assert part in totals, part
            assert "searched the video" in page.inner_text("#status")
            assert page.locator("#frames img").count() == 4, "the preview the model saw first"

            call = page.inner_text("#search-turn-1")
            assert "Look at the first second." in call and "call seek_video_frames" in call
            assert '"query": "red circle", "start_time": 0, "end_time": 1, "num_frames": 2' in call
            # the tool's frames, captioned with their timestamps: the 1-second clip's two cache frames at 2 fps
            gallery = page.locator("#search-frames-1")
            assert gallery.locator(".caption-label").all_inner_texts() == ["0.0s", "0.5s"]
            assert gallery.locator("img").count() == 2
            page.wait_for_function(
                "() => [...document.querySelectorAll('#search-frames-1 img')].every(i => i.complete && i.naturalWidth > 0)",
                timeout=30_000,
            )
            error = page.inner_text("#search-turn-2")
            assert "parse error" in error and "Parse error." in error and '"name": "zoom"' in error
            assert page.locator("#search-frames-2").count() == 0, "an unusable call returns no frames"
            answer = page.inner_text("#search-turn-3")
            assert "I saw two circles." in answer and "answer\n2" in answer
            assert engine.calls[-3:] == [1, 1, 1]
            page.screenshot(path=str(tmp_path / "demo-search.png"), full_page=True)
            browser.close()
    finally:
        blocks.close()
    assert (tmp_path / "demo-search.png").stat().st_size > 10_000
