"""`vlm-rl demo` behind a login, probed over real HTTP on loopback: what an anonymous client gets, which files of a
run folder a logged-in client can fetch, and the limit on failed logins (per client address)."""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

PASSWORD = "demo-test-secret"
API_ROUTES = [
    "/config", "/gradio_api/info", "/gradio_api/openapi.json", "/openapi.json", "/gradio_api/app_id", "/gradio_api/user",
    "/gradio_api/token", "/gradio_api/runs", "/theme.css", "/manifest.json", "/monitoring",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(opener, url: str) -> tuple[int, bytes, dict]:
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def _serving(url: str) -> bool:
    try:
        return _get(urllib.request.build_opener(), url + "/")[0] == 200
    except OSError:
        return False


def _login(port: int, password: str, source: str = "127.0.0.1", cookie: str = "") -> tuple[int, http.client.HTTPMessage]:
    """POST /login from the loopback address `source` (with a session `cookie` if given); (status, headers)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    body = urllib.parse.urlencode({"username": "ann", "password": password})
    connection.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status, response.headers


@pytest.fixture(scope="module")
def demo(tiny_model_dir, tmp_path_factory):
    """The demo serving the tiny model and one run folder (checkpoint, optimizer state, config, drawn curves)."""
    from vlm_rl.training.plots import plot_run

    root = tmp_path_factory.mktemp("demo_security")
    run = root / "runs" / "secret-run-name"
    (run / "checkpoint-2" / "model").mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "reward": s / 2, "loss": 1 / s}) + "\n" for s in (1, 2)))
    (run / "checkpoint-2" / "model" / "model.safetensors").write_bytes(b"weights")
    (run / "checkpoint-2" / "optimizer.pt").write_bytes(b"optimizer state")
    (run / "vlm_rl.yaml").write_text("model: {path: /home/someone/private-model}\n")
    curves = plot_run(run)
    auth_file = root / "logins"
    auth_file.write_text(f"ann:{PASSWORD}\n")
    port = _free_port()
    env = {**os.environ, "GRADIO_TEMP_DIR": str(root / "gradio"), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("VLM_RL_DEMO_AUTH", None)
    command = [sys.executable, "-m", "vlm_rl.cli", "demo", "--model", str(tiny_model_dir), "--port", str(port)]
    command += ["--runs", str(run.parent), "--cache-dir", str(root / "cache"), "--auth-file", str(auth_file)]
    log = root / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not _serving(url):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"vlm-rl demo did not start:\n{log.read_text()}")
            time.sleep(0.5)
        yield url, port, run, curves
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.mark.slow
def test_an_anonymous_client_gets_only_the_login_page(demo, tiny_model_dir):
    url, _, run, curves = demo
    anonymous = urllib.request.build_opener()
    status, page, _ = _get(anonymous, url + "/")
    assert status == 200 and b'name="password"' in page and b"Login" in page
    for secret in (run.name, tiny_model_dir.name, "answer", "named_endpoints", "gradio_api_info"):
        assert secret.encode() not in page, f"the login page shows {secret!r}"
    for route in [*API_ROUTES, f"/gradio_api/file={curves[0]}", f"/gradio_api/file={run / 'vlm_rl.yaml'}"]:
        status, body, _ = _get(anonymous, url + route)
        assert status == 401 and run.name.encode() not in body, route


@pytest.mark.slow
def test_a_logged_in_client_gets_the_curves_and_nothing_else_of_a_run(demo):
    url, port, run, curves = demo
    jar = http.cookiejar.CookieJar()
    client = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with client.open(url + "/login", urllib.parse.urlencode({"username": "ann", "password": PASSWORD}).encode(), timeout=10) as r:
        assert r.status == 200
    status, _, _ = _get(client, url + "/gradio_api/info")
    assert status == 200, "logged in, the app is reachable"
    for curve in curves:
        status, body, headers = _get(client, f"{url}/gradio_api/file={curve}")
        assert status == 200 and headers["content-type"] == "image/png" and body == curve.read_bytes()
    refused = [
        run / "checkpoint-2" / "model" / "model.safetensors",
        run / "checkpoint-2" / "optimizer.pt",
        run / "vlm_rl.yaml",
        run / "metrics.jsonl",
        f"{run}/plots/../vlm_rl.yaml",
    ]
    for path in refused:
        for route in (f"/gradio_api/file={path}", f"/gradio_api/file/{path}"):
            status, body, _ = _get(client, url + route)
            assert status == 403 and b"optimizer state" not in body and b"private-model" not in body, route


@pytest.mark.slow
def test_failed_logins_are_limited_per_client_address(demo):
    _, port, _, _ = demo
    for _ in range(5):
        assert _login(port, "wrong", source="127.0.0.2")[0] == 400
    status, headers = _login(port, "wrong", source="127.0.0.2")
    assert status == 429 and 0 < int(headers["retry-after"]) <= 60
    assert _login(port, PASSWORD, source="127.0.0.2")[0] == 429, "even the right password waits"
    assert _login(port, PASSWORD, source="127.0.0.1")[0] == 200, "another address is not held back"

    status, headers = _login(port, PASSWORD, source="127.0.0.3")
    session = "; ".join(c.split(";")[0] for c in headers.get_all("Set-Cookie"))
    assert status == 200 and "access-token" in session
    for _ in range(5):
        assert _login(port, "wrong", source="127.0.0.3", cookie=session)[0] == 400
    assert _login(port, "wrong", source="127.0.0.3", cookie=session)[0] == 429, "a session does not lift the limit"


def test_launch_options_serve_exact_files_and_guard_the_login(tmp_path, capsys):
    from vlm_rl.demo.app import launch_options
    from vlm_rl.demo.login_guard import LoginGuard
    from vlm_rl.demo.runs import curve_files
    from vlm_rl.demo.settings import DemoConfig

    run = tmp_path / "runs" / "exp"
    run.mkdir(parents=True)
    runs = {"runs/exp": run}
    config = DemoConfig(models=(tmp_path,), runs=(tmp_path / "runs",), auth=(("ann", "pw"),))
    options = launch_options(config, tmp_path / "examples", runs)
    assert options["allowed_paths"] == [str((tmp_path / "examples").resolve()), *(str(p.resolve()) for p in curve_files(run))]
    assert all(p.endswith(".png") for p in options["allowed_paths"][1:]) and str(run) not in options["allowed_paths"]
    assert options["auth"] == [("ann", "pw")] and options["ssr_mode"] is False
    assert [m.cls for m in options["app_kwargs"]["middleware"]] == [LoginGuard]
    assert capsys.readouterr().err == ""

    open_config = DemoConfig(models=(tmp_path,), host="0.0.0.0")
    options = launch_options(open_config, tmp_path / "examples", {})
    assert options["auth"] is None and "app_kwargs" not in options
    assert "WITHOUT A LOGIN" in capsys.readouterr().err
