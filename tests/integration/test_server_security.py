"""`vlm-rl vllm-serve`'s protection over real HTTP on loopback: the token, the body cap, malformed lengths, stalled
clients, and the trainer's client sending the token. The backend is a dict of tensors, so nothing loads a model."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
import torch
from safetensors.torch import save as save_safetensors

from vlm_rl.config import ConfigError
from vlm_rl.rollout import vllm_server
from vlm_rl.rollout.vllm_server import RemoteVLLM, VLLMServerError, make_server, read_token

TOKEN = "s3cret-Token_for-tests"


class DictBackend:
    """Holds named tensors; `load_weights` replaces them, `generate` answers one fixed completion."""

    def __init__(self) -> None:
        self.state = {"w": torch.zeros(4)}

    def generate(self, requests, sampling):
        return [[([1, 2], "stop")] * sampling["n"] for _ in requests]

    def load_weights(self, named) -> int:
        named = dict(named)
        self.state.update({k: v.clone() for k, v in named.items()})
        return len(named)


@pytest.fixture
def serve():
    """Start servers on free loopback ports: ``serve(**make_server kwargs) -> (backend, base url, port)``."""
    started = []

    def start(**kwargs):
        backend = DictBackend()
        httpd = make_server(backend, "127.0.0.1", 0, model="tiny", **kwargs)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        port = httpd.server_address[1]
        return backend, f"http://127.0.0.1:{port}", port

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _raw(port: int, data: bytes, wait_s: float = 5.0) -> bytes:
    """Send `data` on a fresh connection and read until the server closes it (a client timeout fails the test)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        return received


def test_anonymous_or_wrong_token_weight_push_is_refused_and_the_weights_stay(serve, tmp_path, monkeypatch):
    backend, url, _ = serve(token=TOKEN)
    push = save_safetensors({"w": torch.ones(4)})
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}):
        status, payload = _post(url + "/load_weights", push, headers)
        assert status == 401 and "token" in payload["error"], headers
    assert torch.equal(backend.state["w"], torch.zeros(4)), "a refused push changed nothing"
    status, _ = _post(url + "/generate", b"{}")
    assert status == 401, "generation needs the token too"
    with pytest.raises(urllib.error.HTTPError, match="401"):
        urllib.request.urlopen(url + "/health", timeout=10)

    monkeypatch.delenv("VLM_RL_SERVER_TOKEN", raising=False)
    with pytest.raises(VLLMServerError, match="HTTP 401: missing or wrong token.*token_file"):
        RemoteVLLM(url)
    status, payload = _post(url + "/load_weights", push, {"Authorization": f"Bearer {TOKEN}"})
    assert (status, payload) == (200, {"loaded": 1}) and torch.equal(backend.state["w"], torch.ones(4))

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    client = RemoteVLLM(url, token_file=str(token_file))
    assert client.load_weights([("w", torch.full((4,), 2.0))]) == 1 and torch.equal(backend.state["w"], torch.full((4,), 2.0))
    monkeypatch.setenv("VLM_RL_SERVER_TOKEN", TOKEN)
    assert RemoteVLLM(url).generate([{"prompt": "hi"}], {"n": 2}) == [[([1, 2], "stop")] * 2]


def test_a_body_over_the_cap_gets_413_without_being_read(serve, monkeypatch):
    backend, url, port = serve(token=TOKEN, max_body_bytes=2**20)
    head = (
        "POST /load_weights HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: {2**30}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    answer = _raw(port, head + b"\0" * 65536)  # 1 GiB announced, 64 KiB sent: the server must not wait for the rest
    assert answer.startswith(b"HTTP/1.0 413") and b"rollout.vllm.max_body_mb" in answer
    assert time.monotonic() - started < 5, "the connection was closed at once"
    assert torch.equal(backend.state["w"], torch.zeros(4))

    monkeypatch.setenv("VLM_RL_SERVER_TOKEN", TOKEN)
    client = RemoteVLLM(url, chunk_mb=1)
    assert client.max_body_bytes == 2**20, "the server announces its cap"
    with pytest.raises(VLLMServerError, match=r"over the server's cap of 1048576 bytes; .*max_body_mb=3 or more$"):
        client.load_weights([("big", torch.zeros(2**19))])  # one 2 MiB tensor: only a larger cap helps
    with pytest.raises(VLLMServerError, match="max_body_mb=2 or more, or lower rollout.vllm.sync_chunk_mb"):
        client.load_weights([("a", torch.zeros(2**17)), ("b", torch.zeros(2**17)), ("c", torch.zeros(2**17))])
    assert set(backend.state) == {"w"}, "the client refused before sending"


@pytest.mark.parametrize(
    ("lengths", "status"),
    [(["abc"], 400), (["-5"], 400), (["1e3"], 400), (["+5"], 400), (["5", "7"], 400), ([], 411)],
)
def test_a_malformed_content_length_is_a_clear_4xx(serve, lengths, status):
    backend, _, port = serve()
    head = "POST /load_weights HTTP/1.1\r\nHost: x\r\n" + "".join(f"Content-Length: {v}\r\n" for v in lengths)
    answer = _raw(port, (head + "\r\n").encode() + b"12345")
    first, _, body = answer.partition(b"\r\n\r\n")
    assert first.startswith(f"HTTP/1.0 {status}".encode()), answer[:200]
    assert "Content-Length" in json.loads(body)["error"]
    assert torch.equal(backend.state["w"], torch.zeros(4))


def test_a_stalled_client_neither_blocks_others_nor_holds_its_connection(serve):
    _, url, port = serve(io_timeout_s=1.5)
    stalled = socket.create_connection(("127.0.0.1", port), timeout=10)
    stalled.sendall(b"POST /load_weights HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
    half_headers = socket.create_connection(("127.0.0.1", port), timeout=10)
    half_headers.sendall(b"GET /health HTTP/1.1\r\nHo")
    try:
        started = time.monotonic()
        with urllib.request.urlopen(url + "/health", timeout=5) as response:
            assert json.loads(response.read())["model"] == "tiny"
        assert time.monotonic() - started < 1, "another client is served while two connections stall"
        for sock in (stalled, half_headers):
            try:
                assert sock.recv(1) == b"", "the server closes the stalled connection"
            except ConnectionResetError:
                pass
        assert time.monotonic() - started < 8, "within a few times the socket timeout"
    finally:
        stalled.close()
        half_headers.close()


def test_the_token_comes_from_a_file_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("VLM_RL_SERVER_TOKEN", raising=False)
    assert read_token(None) is None
    monkeypatch.setenv("VLM_RL_SERVER_TOKEN", "from-env")
    assert read_token(None) == "from-env"
    token_file = tmp_path / "token"
    token_file.write_text("  from-file\n")
    assert read_token(str(token_file)) == "from-file", "a named file wins over the environment"
    for content, message in (("", "one word of printable ASCII"), ("two words", "no spaces")):
        token_file.write_text(content)
        with pytest.raises(ConfigError, match=f"token file {token_file} must hold.*{message}"):
            read_token(str(token_file))
    with pytest.raises(ConfigError, match="token file .*missing cannot be read"):
        read_token(str(tmp_path / "missing"))


def test_off_loopback_without_a_token_is_warned_about(monkeypatch, capsys):
    bound = []
    monkeypatch.setattr(vllm_server, "ThreadingHTTPServer", lambda address, handler: bound.append(address))
    for host, token, warned in [("0.0.0.0", None, True), ("10.1.2.3", None, True), ("0.0.0.0", TOKEN, False),
                                ("127.0.0.1", None, False), ("localhost", None, False), ("::1", None, False)]:
        make_server(DictBackend(), host, 8000, model="tiny", token=token)
        assert ("WITHOUT A TOKEN" in capsys.readouterr().err) == warned, (host, token)
    assert len(bound) == 6


def test_vllm_serve_takes_a_token_file_never_a_token(capsys):
    from vlm_rl.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["vllm-serve", "--help"])
    usage = capsys.readouterr().out
    assert "--token-file" in usage and "--token " not in usage and "VLM_RL_SERVER_TOKEN" in usage


def test_the_trainer_engine_sends_the_token_of_rollout_vllm_token_file(serve, tmp_path, monkeypatch):
    from vlm_rl.config import load_config
    from vlm_rl.rollout.factory import make_engine

    _, url, _ = serve(token=TOKEN)
    monkeypatch.delenv("VLM_RL_SERVER_TOKEN", raising=False)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    overrides = ["rollout.engine=vllm-server", f"rollout.vllm.server_url={url}"]
    with pytest.raises(VLLMServerError, match="401"):
        make_engine(load_config(None, overrides).rollout, None, None, "tiny")
    engine = make_engine(load_config(None, [*overrides, f"rollout.vllm.token_file={token_file}"]).rollout, None, None, "tiny")
    assert engine.backend.token == TOKEN
