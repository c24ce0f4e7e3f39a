"""The images the gate resolved, kept while nothing can have changed what their names name.

A create names its image; the gate needs the image's id (its scan is cached by id) and its
inspect and history. Reading them costs two calls back to the daemon, each of which passes
through this plugin twice (AuthZReq and AuthZRes) while the create waits: about half of what
the gate added to a create whose scan was cached (benchmarks/README.md, issue 17).

What a name points to changes only through the Engine API (pull, import, load, build, commit,
tag, remove, prune…), and every API call passes through this plugin: its AuthZReq before
dockerd runs it, its AuthZRes after (moby pkg/authorization/middleware.go calls AuthZResponse
once the handler returned, whether it failed or not). So a resolved image is kept until any
call that may change images is seen, and while one is in flight (between its AuthZReq and its
AuthZRes) nothing is kept nor served. A resolution that started before such a call is not
kept (the generation moved). A daemon that (re)starts activates the plugin (``/Plugin.Activate``)
and may have changed images while it ran without it: everything is forgotten then.

Calls that cannot change an image are the container calls (``/containers/…``, ``/exec/…``)
and the read-only ones; every other call counts as one that may, unknown ones included.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable

from garrison.errors import InvalidInput
from garrison.scan.gate.request import READ_ONLY_METHODS, Call, parse_authz
from garrison.scan.gate.routes import Route
from garrison.scan.scanner import ImageRef

_KEEPS = frozenset({Call.READ_ONLY, Call.CREATE, Call.START, Call.UPDATE, Call.EXEC})
_CONTAINER_PATHS = ("/containers/", "/exec/")
# dockerd's encoder (encoding/json, fields in struct order) writes RequestMethod before the
# URI and the bodies, and escapes every quote inside a string: the first match is the field.
_METHOD = re.compile(rb'"RequestMethod"\s*:\s*"([A-Za-z]*)"')
_HEAD = 4096


def changes_images(route: Route) -> bool:
    """May this call change which image a name points to (or remove one)?"""
    if route.call in _KEEPS:
        return False
    return not (route.call is Call.PASSED and route.template.startswith(_CONTAINER_PATHS))


def ended_call(raw: bytes) -> Route | None:
    """The route of the call an ``AuthZRes`` message closes; None when it cannot be read.
    A read-only call is known from the method alone, without decoding the whole message
    (which holds the response body, up to 1 MiB)."""
    found = _METHOD.search(raw, 0, _HEAD)
    if found is not None and found[1].decode().upper() in READ_ONLY_METHODS:
        return Route(Call.READ_ONLY)
    try:
        return parse_authz(raw).route
    except InvalidInput:
        return None


class ImageRefs:
    """``resolve(name)``: the daemon's answer for an image name, kept while it holds."""

    def __init__(self, resolve: Callable[[str], ImageRef], size: int = 256) -> None:
        self._resolve = resolve
        self.size = size
        self._lock = threading.Lock()
        self._refs: OrderedDict[str, ImageRef] = OrderedDict()
        self._generation = 0
        self._in_flight = 0

    def resolve(self, name: str) -> ImageRef:
        """The kept answer, or the daemon's (NotFound and other errors are never kept)."""
        with self._lock:
            ref = self._refs.get(name) if self._in_flight == 0 else None
            if ref is not None:
                self._refs.move_to_end(name)
                return ref
            generation = self._generation
        ref = self._resolve(name)
        with self._lock:
            if self._generation == generation and self._in_flight == 0:
                self._refs[name] = ref
                while len(self._refs) > self.size:
                    self._refs.popitem(last=False)
        return ref

    def changing(self) -> None:
        """A call that may change images is about to run (its AuthZReq was allowed)."""
        with self._lock:
            self._in_flight += 1
            self._forget()

    def changed(self) -> None:
        """That call is over (its AuthZRes), or will not run (refused)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._forget()

    def forget(self) -> None:
        """Something unknown happened (an AuthZRes that cannot be read): nothing kept holds."""
        with self._lock:
            self._forget()

    def restart(self) -> None:
        """A daemon activated the plugin: it may have changed images while it ran without it,
        and no call it had in flight before will end here."""
        with self._lock:
            self._in_flight = 0
            self._forget()

    def _forget(self) -> None:
        self._generation += 1
        self._refs.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._refs)
