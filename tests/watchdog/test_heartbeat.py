"""The heartbeat board between the defender's threads and the watchdog (one process here: the
page is the same memory either way)."""

from __future__ import annotations

import time

from garrison.watchdog.heartbeat import SLOTS, Board

SECOND = 1_000_000_000


def test_a_slot_that_beats_is_not_stalled_and_one_that_stops_is() -> None:
    board = Board.create()
    try:
        reader = board.claim("exec-reader")
        board.claim("loop", bound=60.0)
        now = time.monotonic_ns()
        assert board.stalled(1.0, now) == []
        (stall,) = board.stalled(1.0, now + 2 * SECOND)  # the loop may be silent for 60 s
        assert stall.name == "exec-reader"
        assert stall.bound == 1.0
        assert stall.silent >= 2.0
        reader.beat()
        assert board.stalled(1.0, time.monotonic_ns() + SECOND // 2) == []
        assert [s.name for s in board.stalled(1.0, now + 61 * SECOND)] == ["exec-reader", "loop"]
    finally:
        board.close()


def test_a_released_slot_is_not_watched_and_is_claimed_again() -> None:
    board = Board.create()
    try:
        beat = board.claim("a")
        beat.release()
        assert not board.beating()
        assert board.stalled(1.0, time.monotonic_ns() + 10 * SECOND) == []
        board.claim("b")
        assert board.beating()
    finally:
        board.close()


def test_a_full_board_hands_out_beats_that_go_nowhere() -> None:
    board = Board.create()
    try:
        for i in range(SLOTS):
            board.claim(f"t{i}")
        extra = board.claim("one too many")
        extra.beat()
        extra.release()
        assert len(board.stalled(1.0, time.monotonic_ns() + 10 * SECOND)) == SLOTS
    finally:
        board.close()


def test_acknowledgements_cross_the_page() -> None:
    board = Board.create()
    try:
        other = Board(board.fd)  # the defender's view of the same memory
        other.acknowledge(3)
        assert board.acknowledged() == 3
    finally:
        board.close()
