"""Garrison's one door to apprise: checking a URL and sending through it, with its logs scrubbed.

Apprise logs through the ``apprise`` logger. The URLs it logs itself are masked
("foo://user:Q...e@host"), but not everything a URL holds: a plugin that rejects a token
echoes it whole at WARNING ("An invalid Slack (second) Token (<token>) was specified"), and at
DEBUG it logs the webhook URL it posts to and the requests exception text, both with the
Slack tokens (the path) or the ``?token=`` in full. Every call here runs in a scope that knows
the channel's secrets; a filter on the logger rewrites each record with those secrets hidden
(and any other URL redacted) before any handler (the application's, or apprise's own per-call
capture) sees it. The scope travels in a context variable, which apprise copies into its
worker threads, so lines logged by a worker still running after apprise stopped waiting for
it are scrubbed too.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
import threading
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

import apprise
from apprise.plugins.base import NotifyBase

from garrison.alerts._redact import Piece, redacted, secrets_in
from garrison.alerts.render import inert
from garrison.errors import DeliveryFailed

# urllib3 logs each request line, path and query included (a Slack webhook's tokens are its
# path), at DEBUG: scrub it too for a daemon run with debug logging.
_SCRUBBED_LOGGERS = ("apprise", "urllib3.connectionpool")
# A URL in running text: up to a space or quote, not counting a full stop or bracket after it.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,;:)\]]")
_REASON_MAX = 300


@dataclass
class _Scope:
    secrets: list[Piece]
    notes: list[str] = field(default_factory=list)  # apprise's warnings, scrubbed

    def scrub(self, text: str) -> str:
        for secret, shown in self.secrets:
            text = text.replace(secret, shown)
        return scrub_urls(text)


_scope: ContextVar[_Scope | None] = ContextVar("garrison_alerts_apprise_scope", default=None)
_prepare_lock = threading.Lock()
_prepared = threading.Event()


class _ScrubFilter(logging.Filter):
    """Rewrites a record with the current channel's secrets hidden; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        scope = _scope.get() or _Scope(secrets=[])
        record.msg = scope.scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, scope.scrub(text)
        if record.levelno >= logging.WARNING:
            scope.notes.append(record.msg)
        return True


def scrub_urls(text: str) -> str:
    """Any URL in the text redacted."""
    return _URL.sub(lambda match: redacted(match.group()), text)


def refusal(url: str) -> str | None:
    """None when apprise accepts the URL, else its reason, scrubbed."""
    with _scoped(url) as scope:
        plugin = apprise.Apprise.instantiate(url, asset=_asset())
    if plugin is not None:
        return None
    return _reason(scope, "apprise has no service for it")


def notify(url: str, *, title: str, body: str, timeout: float) -> None:
    """Send one plain-text notification; DeliveryFailed (redacted) when it does not arrive."""
    shown = redacted(url)
    with _scoped(url) as scope:
        plugin = apprise.Apprise.instantiate(url, asset=_asset())
        if plugin is None:
            raise DeliveryFailed(f"{shown}: {_reason(scope, 'apprise refused the URL')}")
        _bound(plugin, timeout)
        try:
            result = _send(plugin, title=title, body=body, timeout=timeout)
        except Exception as exc:  # apprise catches its plugins' errors; this is the rest
            # No "from exc": its text may hold the URL, and a traceback would print it.
            reason = inert(scope.scrub(f"{type(exc).__name__}: {exc}"), _REASON_MAX)
            raise DeliveryFailed(f"{shown}: {reason}") from None
    if result.status == apprise.AppriseResultStatus.TIMEOUT:
        raise DeliveryFailed(f"{shown}: no answer within {timeout:g} s")
    if not result:
        raise DeliveryFailed(f"{shown}: {_reason(scope, 'apprise reported a failure')}")


def _send(plugin: NotifyBase, *, title: str, body: str, timeout: float) -> apprise.AppriseResult:
    sender = apprise.Apprise(asset=_asset())
    sender.add(plugin)
    # timeout= bounds the whole call (apprise stops waiting and reports TIMEOUT); the
    # socket timeouts set by _bound make the abandoned worker end soon after.
    return sender.notify(
        body=body,
        title=title,
        body_format=apprise.NotifyFormat.TEXT,
        timeout=timeout,
    )


def _bound(plugin: NotifyBase, timeout: float) -> None:
    # Every plugin inherits these from URLBase: requests' (connect, read) timeout for the
    # HTTP services, smtplib's timeout (connect and each reply) for email. A ?cto=/?rto= in
    # the URL may ask for less, never for more.
    plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, timeout)
    plugin.socket_read_timeout = min(plugin.socket_read_timeout, timeout)


def _asset() -> apprise.AppriseAsset:
    # No storage_path: apprise's persistent store stays in memory, nothing is written to disk.
    return apprise.AppriseAsset(app_id="Garrison", app_desc="Garrison alerts")


def _reason(scope: _Scope, default: str) -> str:
    # The first warning is the cause ("An invalid Slack (first) Token..."); later ones are
    # consequences ("Could not load Slack URL").
    return inert(scope.notes[0] if scope.notes else default, _REASON_MAX)


@contextlib.contextmanager
def _scoped(url: str) -> Iterator[_Scope]:
    _prepare()
    scope = _Scope(secrets=secrets_in(url))
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def _prepare() -> None:
    """Done on first use, not at import: importing Garrison changes no logger."""
    with _prepare_lock:
        if _prepared.is_set():
            return
        for name in _SCRUBBED_LOGGERS:
            logging.getLogger(name).addFilter(_ScrubFilter())
        _preload_imghdr()
        _prepared.set()


def _preload_imghdr() -> None:
    # Apprise 2.3.0 loads every plugin on its first URL lookup, and its email plugin imports
    # imghdr (for PGPy), which warns DeprecationWarning on Python 3.11 and 3.12: under -W error
    # (pytest's filterwarnings included) no URL at all would load. Imported once here with
    # that one warning ignored, the module is cached and apprise's import stays silent.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
        with contextlib.suppress(ImportError):  # Python 3.13 has no imghdr: apprise shims it
            importlib.import_module("imghdr")
