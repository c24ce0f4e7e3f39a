"""Where a remote console is and which token to show it (``RemoteSettings``), from the
environment: read by every CLI command, so it imports no HTTP client (``remote_client`` does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from garrison.errors import ConfigError
from garrison.text import clip

URL_VAR = "GARRISON_CONSOLE_URL"
TOKEN_VAR = "GARRISON_CONSOLE_TOKEN"
TOKEN_FILE_VAR = "GARRISON_CONSOLE_TOKEN_FILE"
CA_VAR = "GARRISON_CONSOLE_CA"


@dataclass(frozen=True, slots=True)
class RemoteSettings:
    url: str  # without a trailing slash
    token: str
    ca: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RemoteSettings | None:
        """None when ``GARRISON_CONSOLE_URL`` is unset or empty (the local store is used);
        ConfigError naming the variable when it is set but unusable."""
        url = env.get(URL_VAR, "").strip()
        if not url:
            return None
        ca = env.get(CA_VAR, "").strip()
        return cls(_checked_url(url), _token(env), Path(ca) if ca else None)


def _checked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError(f"{URL_VAR} must be http(s)://HOST:PORT, not {clip(repr(url), 80)}")
    return url.rstrip("/")


def _token(env: Mapping[str, str]) -> str:
    token, path = env.get(TOKEN_VAR, "").strip(), env.get(TOKEN_FILE_VAR, "").strip()
    if token and path:
        raise ConfigError(f"set {TOKEN_VAR} or {TOKEN_FILE_VAR}, not both")
    if path:
        token = _read_token(Path(path))
    if not token:
        raise ConfigError(
            f"{URL_VAR} is set but no token: set {TOKEN_VAR} or {TOKEN_FILE_VAR} "
            "(`garrison users token create USER --name NAME` on the console's host makes one)"
        )
    # Never quoted back: it is a secret. Printable ASCII without spaces is what a header takes.
    if not token.isascii() or not token.isprintable() or " " in token:
        raise ConfigError(f"{TOKEN_VAR}: not an API token (gt_…)")
    return token


def _read_token(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError as exc:
        raise ConfigError(f"{TOKEN_FILE_VAR}: cannot read {path}: {exc.strerror or exc}") from exc
