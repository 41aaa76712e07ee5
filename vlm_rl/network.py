"""Network helpers shared by the project's servers (`vlm-rl vllm-serve`, `vlm-rl synth-server`, `vlm-rl demo`)."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

from vlm_rl.config import ConfigError

_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses: only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(token_file: str | Path | None, variable: str) -> str | None:
    """A server's token: the content of `token_file` when given, else the environment `variable`, else None.

    ConfigError when the file cannot be read, or the token is empty or not one word of printable ASCII.
    """
    if token_file:
        path = Path(token_file).expanduser()
        try:
            token, where = path.read_text().strip(), f"token file {path}"
        except OSError as err:
            raise ConfigError(f"token file {path} cannot be read ({err.strerror}); name a readable file") from None
    else:
        token, where = os.environ.get(variable, "").strip(), f"${variable}"
        if not token:
            return None
    if not _TOKEN_CHARS.fullmatch(token):
        raise ConfigError(
            f"{where} must hold one word of printable ASCII (no spaces), e.g. the output of "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return token
