"""A read-only binary file over an iterator of byte chunks (what ``Image.save()`` yields)."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterable, Iterator
from queue import Empty, Queue
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class ChunkReader(io.RawIOBase):
    """Lets ``tarfile`` stream a download without holding more than one chunk."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = memoryview(b"")  # what is left of the current chunk, not copied

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk).cast("B")
        size = min(len(view), len(self._pending))
        view[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class _End:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def prefetched(chunks: Iterable[bytes], depth: int = 32) -> Iterator[bytes]:
    """Pull ``chunks`` on a thread of its own, up to ``depth`` ahead, so that the engine
    producing an image archive and the parsing of it overlap (the socket read releases the
    GIL). An error on the producing side is raised here, in order."""
    queue: Queue[bytes | _End] = Queue(maxsize=depth)
    stop = threading.Event()

    def pull() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                queue.put(chunk)
        except BaseException as exc:  # handed over to the consumer, raised there
            queue.put(_End(exc))
        else:
            queue.put(_End())

    thread = threading.Thread(target=pull, name="garrison-image-reader", daemon=True)
    thread.start()
    try:
        while not isinstance(item := queue.get(), _End):
            yield item
        if item.error is not None:
            raise item.error
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(Empty):
                queue.get_nowait()
            thread.join(0.01)
