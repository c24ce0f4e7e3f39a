"""The process tree read from /proc: a real tree of processes this test starts."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from garrison.forensics.proctree import snapshot
from tests.support import wait_for

TREE = """
import subprocess, sys, time
child = subprocess.Popen(["sleep", "60"])
print(child.pid, flush=True)
time.sleep(60)
"""


def test_the_tree_under_a_process_lists_parents_before_children_with_their_argv() -> None:
    root = subprocess.Popen([sys.executable, "-c", TREE, "marker-arg"], stdout=subprocess.PIPE)
    try:
        assert root.stdout is not None
        sleeper = int(root.stdout.readline())
        found = wait_for("the child to run sleep", lambda: ready(snapshot(root.pid)))
        assert [p["pid"] for p in found] == [root.pid, sleeper]
        top, child = found
        assert top["ppid"] == os.getpid()
        assert top["argv"][-1] == "marker-arg"
        assert (child["ppid"], child["argv"], child["name"]) == (root.pid, ["sleep", "60"], "sleep")
        assert child["path"].endswith("/sleep")
        assert child["uid"] == os.getuid()
        assert child["pidInContainer"] == sleeper  # no pid namespace of its own here
    finally:
        for process in reversed(snapshot(root.pid)):  # the sleep too, not left orphaned
            with contextlib.suppress(ProcessLookupError):
                os.kill(process["pid"], signal.SIGKILL)
        root.wait()
        if root.stdout is not None:
            root.stdout.close()


def ready(tree: list[dict[str, object]]) -> list[dict[str, object]] | None:
    """The tree once the child has exec'd sleep (before, it is a fork of Python)."""
    return tree if len(tree) == 2 and tree[1]["name"] == "sleep" else None


def test_a_gone_or_unknown_process_is_an_empty_tree() -> None:
    done = subprocess.Popen(["true"])
    done.wait()
    time.sleep(0.01)
    assert snapshot(done.pid) == []
    assert snapshot(0) == []
