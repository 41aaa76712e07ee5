"""`vlm-rl synth-server` as a real subprocess on loopback: the round trip keeps labels, overload gets 429, the
token, body cap and validation refuse what they should, a kill -9 loses and repeats no job, and a bounded load test
reports its figures. Every server runs on a free port in its own workdir."""

from __future__ import annotations

import base64
import io
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_pipelines.synthesis import foreground_mask
from synth_server_process import REPO, TOKEN, Server

from vlm_rl.synthesis.client import SynthesisClient

@pytest.fixture
def servers(tmp_path):
    """``servers(name, *options, token=True, port=0) -> Server``, each stopped at the end."""
    started: list[Server] = []
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")

    def start(name: str, *options: str, token: bool = True, port: int = 0) -> Server:
        server = Server(tmp_path / name, *options, token_file=token_file if token else None, port=port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def picture(width: int, height: int, boxes: list[list[float]], seed: int = 0) -> Image.Image:
    """A dark image with noisy coloured objects in `boxes` (every foreground pixel worth checking)."""
    rng = np.random.default_rng(seed)
    pixels = np.full((height, width, 3), 20, dtype=np.uint8)
    for x1, y1, x2, y2 in boxes:
        rows, cols = slice(int(y1), int(np.ceil(y2))), slice(int(x1), int(np.ceil(x2)))
        pixels[rows, cols] = rng.integers(0, 256, size=(rows.stop - rows.start, cols.stop - cols.start, 3))
    return Image.fromarray(pixels, "RGB")


def png_b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def job(image: Image.Image | None, boxes, source_id: str, **fields) -> dict:
    body = {"boxes": boxes, "labels": [f"red square {i}" for i in range(len(boxes))], "description": "blue stripes",
            "seed": 1, "source_id": source_id, **fields}
    if image is not None:
        body["image"] = png_b64(image)
    return body


def assert_labels_kept(source: Image.Image, made: Image.Image, boxes) -> None:
    assert made.size == source.size
    mask = foreground_mask(source.size, boxes)
    np.testing.assert_array_equal(np.asarray(made.convert("RGB"))[mask], np.asarray(source)[mask])
    assert (np.asarray(made.convert("RGB")) != np.asarray(source)).any(axis=2)[~mask].mean() > 0.9


def decoded(sample: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(sample["image"]))).convert("RGB")


def read_all(server: Server, cursor: int, limit: int = 64) -> tuple[list[dict], int]:
    """Every sample after `cursor` now on the server, page by page; (samples, new cursor)."""
    found = []
    while True:
        status, answer, _ = server.call("GET", f"/samples?cursor={cursor}&limit={limit}&images=path")
        assert status == 200, answer
        found += answer["samples"]
        if answer["cursor"] == cursor:
            return found, cursor
        cursor = answer["cursor"]


def raw_reply(server: Server, data: bytes) -> str:
    """Send `data` on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall(data)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
    return reply.decode()


def test_round_trip_returns_new_images_with_the_same_boxes_and_labels(servers):
    server = servers("work")
    boxes_a, boxes_b = [[3, 4, 20, 18], [30.5, 10, 50, 33.5]], [[0, 0, 16, 16]]
    a, b = picture(64, 40, boxes_a, 1), picture(40, 40, boxes_b, 2)
    (server.workdir / "inputs").mkdir()
    b.save(server.workdir / "inputs" / "b.png")
    submitted = [job(a, boxes_a, "sample-a"), job(None, boxes_b, "sample-b", image_path="inputs/b.png", seed=9, description="")]
    for body in submitted:
        status, answer, _ = server.call("POST", "/jobs", body)
        assert status == 202, answer
    server.wait_done(2)
    status, answer, _ = server.call("GET", "/samples?cursor=0&limit=10")
    assert status == 200 and answer["cursor"] == 2 and answer["done"] == 2
    by_parent = {s["parent_id"]: s for s in answer["samples"]}
    assert sorted(s["seq"] for s in answer["samples"]) == [1, 2]
    for body, source in zip(submitted, (a, b)):
        sample = by_parent[body["source_id"]]
        assert (sample["boxes"], sample["labels"]) == (body["boxes"], body["labels"])
        assert (sample["description"], sample["seed"]) == (body["description"], body["seed"])
        assert_labels_kept(source, decoded(sample), body["boxes"])
    _, by_path, _ = server.call("GET", "/samples?cursor=1&limit=10&images=path")
    [later] = by_path["samples"]
    assert later["seq"] == 2 and base64.b64decode(answer["samples"][1]["image"]) == Path(later["image_path"]).read_bytes()
    assert server.call("GET", "/samples?cursor=2")[1] == {"samples": [], "cursor": 2, "done": 2}


def test_token_body_cap_and_bad_requests_get_one_clear_error_each(servers):
    server = servers("work", "--max-body-mb", "1")
    image = picture(32, 24, [[2, 2, 10, 10]])
    good = job(image, [[2, 2, 10, 10]], "s")
    for method, path, body in (("POST", "/jobs", good), ("GET", "/samples", None), ("GET", "/metrics", None)):
        for token in (None, "wrong-token"):
            status, answer, headers = server.call(method, path, body, token=token)
            assert status == 401 and "missing or wrong token" in answer["error"] and headers["WWW-Authenticate"] == "Bearer"
    assert server.call("GET", "/health", token=None)[:2] == (200, {"status": "ok"})
    assert server.metrics()["accepted"] == 0

    head = f"POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
    began = time.monotonic()
    reply = raw_reply(server, f"{head}Content-Length: {2**30}\r\n\r\n".encode() + b"{" * 65536)
    assert reply.startswith("HTTP/1.1 413") and "over this server's cap of 1048576 bytes" in reply, reply
    assert time.monotonic() - began < 10
    reply = raw_reply(server, f"{head}Transfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n".encode())
    assert reply.startswith("HTTP/1.1 411") and "not a Transfer-Encoding" in reply, reply

    (server.workdir.parent / "outside.png").write_bytes(base64.b64decode(good["image"]))
    refusals = [
        (dict(good, colour="red"), 422, "unknown field 'colour'"),
        (dict(good, boxes=[[2, 2, 40, 10]]), 422, "boxes[0] = [2.0, 2.0, 40.0, 10.0] is not inside the 32x24 image"),
        (dict(good, boxes=[[2, 2, 10]]), 422, "boxes[0]: List should have at least 4 items"),
        (dict(good, labels=["a", "b"]), 422, "1 boxes but 2 labels"),
        (dict(good, seed=-3), 422, "seed: Input should be greater than or equal to 0"),
        (dict(good, image="bm90IGEgcG5n"), 422, "image is not a PNG"),
        (dict(good, image="%%%"), 422, "image is not base64"),
        (dict(good, image_path="inputs/x.png"), 422, "give exactly one of image"),
        ({k: v for k, v in good.items() if k != "image"} | {"image_path": "../outside.png"}, 403, "outside the server's workdir"),
        ({k: v for k, v in good.items() if k != "source_id"}, 422, "source_id: Field required"),
    ]
    for body, code, message in refusals:
        status, answer, _ = server.call("POST", "/jobs", body)
        assert status == code and message in answer["error"], (body.keys(), status, answer)
    assert server.call("POST", "/jobs", raw=b'{"boxes": [[1, 2')[:2] == (400, {"error": "the body is not valid JSON; send one JSON object"})
    assert server.call("GET", "/samples?limit=100000")[0] == 422
    assert server.call("GET", "/nowhere")[0] == 404
    metrics = server.metrics()
    assert (metrics["accepted"], metrics["invalid"]) == (0, len(refusals) + 1)
    assert server.call("POST", "/jobs", good)[0] == 202


def test_a_full_queue_answers_429_with_retry_after_and_loses_no_accepted_job(servers):
    server = servers("work", "--workers", "1", "--max-queue", "1")
    boxes = [[100, 100, 300, 300]]
    body = job(picture(1024, 1024, boxes), boxes, "big")
    answers: list[tuple[int, dict, object]] = []
    start = threading.Barrier(16)

    def post() -> None:
        start.wait()
        answers.append(server.call("POST", "/jobs", body))

    threads = [threading.Thread(target=post) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    busy = [(a, h) for status, a, h in answers if status == 429]
    accepted = sorted(a["job"] for status, a, _ in answers if status == 202)
    assert len(busy) + len(accepted) == 16 and busy and accepted
    for answer, headers in busy:
        assert "queue is full" in answer["error"] and 1 <= int(headers["Retry-After"]) <= 30
    metrics = server.wait_done(len(accepted))
    assert (metrics["rejected"], metrics["done"], metrics["failed"]) == (len(busy), len(accepted), 0)
    samples, _ = read_all(server, 0)
    assert sorted(s["job"] for s in samples) == accepted


def test_kill_9_mid_run_then_restart_loses_and_repeats_no_job(servers):
    options = ("--workers", "1", "--max-queue", "100")
    server = servers("work", *options)
    total = 30
    # large sources on disk: a submit is a small request, a job is slow work, so the kills land mid-run
    (server.workdir / "inputs").mkdir(parents=True, exist_ok=True)
    picture(1024, 1024, [[10, 20, 60, 70]]).save(server.workdir / "inputs" / "big.png")
    submitted = []
    for i in range(total):
        boxes = [[10 + i, 20, 60 + i, 70]]
        body = job(None, boxes, f"src-{i}", seed=i, image_path="inputs/big.png")
        status, answer, _ = server.call("POST", "/jobs", body)
        assert status == 202
        submitted.append(answer["job"])
    consumer, cursor = [], 0
    for round_ in range(3):  # two kills mid-run, then a run to the end
        if round_ < 2:
            target = server.metrics()["done"] + 4
            while (done := server.metrics()["done"]) < target:
                time.sleep(0.01)
            assert done < total, "the jobs ran too fast to kill the server mid-run"
        more, cursor = read_all(server, cursor)
        consumer += more
        if round_ < 2:
            server.kill()
            server = servers("work", *options)
            resumed = server.metrics()["resumed"]
            assert 0 < resumed <= total - len(consumer), server.banner
    server.wait_done(total)
    more, cursor = read_all(server, cursor)
    consumer += more
    assert cursor == total
    assert sorted(s["job"] for s in consumer) == submitted
    assert [s["seq"] for s in consumer] == list(range(1, total + 1))
    fresh, _ = read_all(server, 0, limit=7)
    assert [s["job"] for s in fresh] == [s["job"] for s in consumer]
    assert not list(server.workdir.rglob("*.tmp"))


def test_the_client_never_blocks_reports_a_down_server_and_delivers_once_it_is_up(servers, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "token").write_text(TOKEN)
    client = SynthesisClient(f"http://127.0.0.1:{port}", token_file=tmp_path / "token", poll_s=0.05)
    boxes = [[4, 4, 20, 20]]
    source = picture(48, 32, boxes, 3)
    began = time.monotonic()
    assert client.submit(source, boxes, ["red square"], "yellow dots", seed=2, source_id="s-1")
    assert client.fetch() == []
    assert time.monotonic() - began < 0.5
    deadline = time.monotonic() + 10
    while client.state != "down":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert client.status().outbox == 1 and "cannot be reached" in client.status().last_error
    assert client.status().queue_depth is None
    servers("work", port=port)
    deadline, got = time.monotonic() + 30, []
    while not got:
        assert time.monotonic() < deadline, client.status()
        got = client.fetch()
        time.sleep(0.05)
    [sample] = got
    assert client.state == "up" and (sample.parent_id, sample.labels, sample.boxes) == ("s-1", ["red square"], boxes)
    assert_labels_kept(source, sample.image, boxes)
    assert client.cursor == sample.seq == 1
    deadline = time.monotonic() + 10
    while client.status().queue_depth is None:
        assert time.monotonic() < deadline, "the client never read the server's queue depth"
        time.sleep(0.05)
    assert client.status().queue_depth == 0
    client.close()
    again = SynthesisClient(f"http://127.0.0.1:{port}", token_file=tmp_path / "token", cursor=client.cursor, poll_s=0.05)
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token")
    refused = SynthesisClient(f"http://127.0.0.1:{port}", token_file=wrong, poll_s=0.05)
    time.sleep(0.5)
    assert again.fetch() == [] and again.state == "up"
    assert refused.state == "unauthorized" and refused.fetch() == []
    again.close()
    refused.close()


def _start_and_fail(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vlm_rl.synthesis", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_vlm_rl_synth_server_passes_its_options_and_refuses_bad_ones(tmp_path, monkeypatch, capsys):
    from vlm_rl import cli
    from vlm_rl.synthesis import server

    started = {}
    monkeypatch.setattr(server, "serve", lambda workdir, **options: started.update(options, workdir=workdir))
    (tmp_path / "token").write_text(TOKEN)
    cli.main(["synth-server", "--workdir", str(tmp_path / "w"), "--host", "::1", "--port", "9123", "--workers", "3",
              "--max-queue", "7", "--token-file", str(tmp_path / "token"), "--max-body-mb", "5"])
    assert started == {
        "workdir": str(tmp_path / "w"), "host": "::1", "port": 9123, "token": TOKEN, "generator": "procedural",
        "model_path": None, "device": None, "workers": 3, "max_queue": 7, "max_body_mb": 5,
    }
    with pytest.raises(SystemExit) as unknown:
        cli.main(["synth-server", "--workdir", str(tmp_path / "w"), "--generator", "magic"])
    assert unknown.value.code == 2 and "invalid choice: 'magic'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as missing:
        cli.main(["synth-server", "--workdir", str(tmp_path / "w"), "--token-file", str(tmp_path / "nope")])
    assert missing.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"vlm-rl synth-server: error: token file {tmp_path / 'nope'} cannot be read (No such file or directory); "
        "name a readable file"
    )


def test_the_server_refuses_to_start_with_a_bad_setup(servers, tmp_path):
    exposed = _start_and_fail("--workdir", str(tmp_path / "w"), "--host", "0.0.0.0", "--port", "0")
    assert exposed.returncode == 2 and "refusing to listen on 0.0.0.0 without a token" in exposed.stderr
    no_model = _start_and_fail("--workdir", str(tmp_path / "w"), "--generator", "diffusers", "--port", "0")
    assert no_model.returncode == 2 and "needs the directory of a local inpainting pipeline" in no_model.stderr
    servers("held")
    second = _start_and_fail("--workdir", str(tmp_path / "held"), "--port", "0")
    assert second.returncode == 2 and "in use by another synthesis server" in second.stderr


def test_load_eight_clients_report_throughput_latency_and_memory(servers, capsys):
    server = servers("work", "--workers", "2", "--max-queue", "32")
    clients, per_client = 8, 60
    bodies = []
    for i in range(clients * per_client):
        boxes = [[4 + i % 50, 16, 90 + i % 50, 120], [150, 100 + i % 60, 210, 160 + i % 60]]
        bodies.append(job(picture(224, 224, boxes, i), boxes, f"load-{i}", seed=i, description="green grid"))
    rss_before = server.rss_kib()
    post_latencies: list[float] = []
    busy = [0]
    lock = threading.Lock()

    def client(index: int) -> None:
        for body in bodies[index::clients]:
            while True:
                began = time.monotonic()
                status, answer, _ = server.call("POST", "/jobs", body)
                with lock:
                    post_latencies.append(time.monotonic() - began)
                if status == 202:
                    break
                assert status == 429, answer
                with lock:
                    busy[0] += 1
                time.sleep(0.02)  # a load client retries sooner than Retry-After asks

    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = clients * per_client
    server.wait_done(total, timeout_s=60)
    wall = time.monotonic() - began
    samples, cursor = read_all(server, 0, limit=256)
    rss_after = server.rss_kib()
    assert cursor == total and sorted(s["job"] for s in samples) == list(range(1, total + 1))
    assert sorted(s["parent_id"] for s in samples) == sorted(b["source_id"] for b in bodies)
    end_to_end = sorted(s["finished_at"] - s["submitted_at"] for s in samples)
    posts = sorted(post_latencies)
    metrics = server.metrics()
    figures = (
        f"synth-server load: {clients} clients, {total} jobs (224x224 PNG) in {wall:.1f} s = {total / wall:.1f} jobs/s; "
        f"POST p50 {statistics.median(posts) * 1e3:.1f} ms p99 {posts[int(0.99 * (len(posts) - 1))] * 1e3:.1f} ms; "
        f"submit-to-done p50 {statistics.median(end_to_end) * 1e3:.0f} ms p99 {end_to_end[int(0.99 * (total - 1))] * 1e3:.0f} ms; "
        f"429s {busy[0]}; server RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MiB"
    )
    with capsys.disabled():
        print(f"\n{figures}")
    assert metrics["rejected"] == busy[0] and metrics["failed"] == 0
    assert total / wall > 5, figures
    assert rss_after - rss_before < 200 * 1024, figures
    assert wall < 60, figures


def test_the_help_shows_how_to_run_the_server_beside_training_here_and_elsewhere(capsys):
    from vlm_rl import cli

    with pytest.raises(SystemExit):
        cli.main(["synth-server", "--help"])
    shown = capsys.readouterr().out
    assert "bash scripts/train_syn_grpo.sh configs/syn_grpo.yaml" in shown
    assert "--host 0.0.0.0 --token-file TOKEN_FILE" in shown and "SYNTH_SERVER=http://HOST:8100" in shown
