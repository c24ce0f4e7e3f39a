"""A small typed binding of Debian's libbpf (``libbpf.so.1``, libbpf ≥ 1.0) through ctypes.

Only what Garrison uses: open, load and attach an object's programs; update, delete and sum
(per CPU) map entries; consume a ring buffer. libbpf 1.x returns NULL or a negative errno on
failure; both become :class:`SensorError` here. libbpf's own messages are silenced
(``GARRISON_BPF_DEBUG=1`` lets them through to stderr).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

from garrison.errors import SensorError

BPF_ANY = 0
# int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size)
SampleFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)

_lib: ctypes.CDLL | None = None


def library() -> ctypes.CDLL:
    """libbpf, loaded and typed once. SensorError when it is not installed."""
    global _lib  # noqa: PLW0603 - one binding per process
    if _lib is None:
        try:
            lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
        except OSError as exc:
            raise SensorError(f"libbpf is not installed (Debian package libbpf1): {exc}") from exc
        try:
            _declare(lib)
        except AttributeError as exc:  # a libbpf older than 1.0
            raise SensorError(f"libbpf too old (1.0 or newer is needed): {exc}") from exc
        if not os.environ.get("GARRISON_BPF_DEBUG"):
            lib.libbpf_set_print(None)
        _lib = lib
    return _lib


def _declare(lib: ctypes.CDLL) -> None:
    p, i, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    signatures: dict[str, tuple[object, list[object]]] = {
        "bpf_object__open_file": (p, [s, p]),
        "bpf_object__load": (i, [p]),
        "bpf_object__close": (None, [p]),
        "bpf_object__find_program_by_name": (p, [p, s]),
        "bpf_object__find_map_fd_by_name": (i, [p, s]),
        "bpf_program__attach": (p, [p]),
        "bpf_link__destroy": (i, [p]),
        "bpf_map_update_elem": (i, [i, p, p, ctypes.c_uint64]),
        "bpf_map_delete_elem": (i, [i, p]),
        "bpf_map_lookup_elem": (i, [i, p, p]),
        "libbpf_num_possible_cpus": (i, []),
        "libbpf_set_print": (p, [p]),
        "ring_buffer__new": (p, [i, SampleFn, p, p]),
        "ring_buffer__poll": (i, [p, i]),
        "ring_buffer__consume": (i, [p]),
        "ring_buffer__free": (None, [p]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes


def _failed(what: str, result: int | None = None) -> SensorError:
    err = -result if result is not None and result < 0 else ctypes.get_errno()
    return SensorError(f"{what}: {os.strerror(err) if err else 'failed'}")


class BpfObject:
    """A loaded object file: its programs attached by name, its maps by name."""

    def __init__(self, path: str) -> None:
        self._lib = library()
        self._obj = self._lib.bpf_object__open_file(os.fsencode(path), None)
        if not self._obj:
            raise _failed(f"cannot open BPF object {path}")
        self._links: list[int] = []
        result = self._lib.bpf_object__load(self._obj)
        if result < 0:
            self.close()
            raise _failed("the kernel refused the BPF programs", result)

    def attach(self, program: str) -> int:
        """Attach a program; its link, for :meth:`detach`."""
        prog = self._lib.bpf_object__find_program_by_name(self._obj, program.encode())
        if not prog:
            raise SensorError(f"no BPF program {program}")
        link = self._lib.bpf_program__attach(prog)
        if not link:
            raise _failed(f"cannot attach BPF program {program}")
        self._links.append(link)
        return int(link)

    def detach(self, link: int) -> None:
        if link in self._links:
            self._links.remove(link)
            self._lib.bpf_link__destroy(link)

    def map_fd(self, name: str) -> int:
        fd = int(self._lib.bpf_object__find_map_fd_by_name(self._obj, name.encode()))
        if fd < 0:
            raise SensorError(f"no BPF map {name}")
        return fd

    def close(self) -> None:
        """Detach every program and free the object (its maps go with it)."""
        for link in self._links:
            self._lib.bpf_link__destroy(link)
        self._links = []
        if self._obj:
            self._lib.bpf_object__close(self._obj)
            self._obj = None


MapValue = ctypes.c_uint8 | ctypes.c_uint32 | ctypes.c_uint64 | ctypes.Structure


def map_update(fd: int, key: MapValue, value: MapValue) -> None:
    result = library().bpf_map_update_elem(fd, ctypes.byref(key), ctypes.byref(value), BPF_ANY)
    if result < 0:
        raise _failed("BPF map update failed", result)


def map_delete(fd: int, key: MapValue) -> None:
    """Delete a key; a key that is not there is no error."""
    library().bpf_map_delete_elem(fd, ctypes.byref(key))


def percpu_sum(fd: int, slot: int) -> int:
    """The sum over CPUs of a u64 slot of a per-CPU array."""
    cpus = max(1, int(library().libbpf_num_possible_cpus()))
    values = (ctypes.c_uint64 * cpus)()
    key = ctypes.c_uint32(slot)
    if library().bpf_map_lookup_elem(fd, ctypes.byref(key), values) < 0:
        return 0
    return sum(values)


class RingBuffer:
    """A BPF ring buffer; ``poll`` calls ``sample(bytes)`` for each record, on the caller's
    thread. The callback must not raise (exceptions are caught and counted by the caller)."""

    def __init__(self, map_fd: int, sample: Callable[[bytes], None]) -> None:
        self._lib = library()

        def trampoline(_ctx: int | None, data: int | None, size: int) -> int:
            sample(ctypes.string_at(data, size) if data else b"")
            return 0

        self._callback = SampleFn(trampoline)  # kept alive as long as the ring buffer
        self._rb = self._lib.ring_buffer__new(map_fd, self._callback, None, None)
        if not self._rb:
            raise _failed("cannot open the BPF ring buffer")

    def poll(self, timeout_ms: int) -> int:
        """Wait up to ``timeout_ms`` for a wake-up and consume what is queued; the GIL is
        released while waiting. Records submitted without a wake-up are consumed when the
        wait times out. Returns how many were consumed (negative errno: interrupted)."""
        done = int(self._lib.ring_buffer__poll(self._rb, timeout_ms))
        if done == 0:
            done = int(self._lib.ring_buffer__consume(self._rb))
        return done

    def close(self) -> None:
        if self._rb:
            self._lib.ring_buffer__free(self._rb)
            self._rb = None
