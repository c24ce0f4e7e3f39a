"""Where a console's time goes: py-spy's samples of it (``--format raw``, collapsed stacks),
summed by library (by the file of each sample's innermost frame: what ran), by function (every
function on a sample's stack, once: what it spent, its callees included), and the share of
samples that held the GIL (a console is one Python process: the GIL caps it at one core).
"""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path
from typing import Any

PY_SPY = Path(sys.executable).parent / "py-spy"

# Innermost frame's file → the library it is in, first match wins.
LIBRARIES = (
    ("/garrison/", "garrison"),
    ("sqlalchemy/", "SQLAlchemy"),
    ("psycopg", "psycopg"),
    ("cryptography/", "cryptography (x509)"),
    ("ssl.py", "TLS"),
    ("sslproto.py", "TLS"),
    ("json/", "json"),
    ("starlette/", "Starlette/uvicorn/h11/anyio"),
    ("uvicorn/", "Starlette/uvicorn/h11/anyio"),
    ("h11/", "Starlette/uvicorn/h11/anyio"),
    ("anyio/", "Starlette/uvicorn/h11/anyio"),
    ("asyncio/", "asyncio"),
    ("threading.py", "threads"),
    ("concurrent/", "threads"),
    ("pydantic", "pydantic"),
)


def profile_console(pid: int, seconds: float, out: Path) -> dict[str, Any]:
    """Sample ``pid`` for ``seconds`` (without stopping it) twice at once: all threads not
    idle, and only the thread holding the GIL."""
    runs = {}
    for name, extra in (("all", []), ("gil", ["--gil"])):
        path = out.with_name(f"{out.stem}-{name}.txt")
        argv = [str(PY_SPY), "record", "--nonblocking", "-r", "100", "-d", str(int(seconds)),
                "-f", "raw", "--full-filenames", "-o", str(path), "-p", str(pid),
                *extra]  # fmt: skip
        pipe = subprocess.PIPE
        runs[name] = (path, subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=pipe))
    for path, proc in runs.values():
        _, err = proc.communicate(timeout=seconds + 60)
        if proc.returncode and not path.exists():
            return {"error": err.decode(errors="replace")[-500:]}
    return {
        "seconds": seconds,
        "all": summary(read_stacks(runs["all"][0])),
        "gil": summary(read_stacks(runs["gil"][0])),
    }


def read_stacks(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def summary(stacks: list[tuple[list[str], int]]) -> dict[str, Any]:
    total = sum(n for _, n in stacks) or 1
    libraries: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    for frames, n in stacks:
        libraries[library(frames[-1])] += n
        for name in {short(f) for f in frames if "(" in f and library(f) != "threads"}:
            functions[name] += n
    return {
        "samples": total,
        "libraries": {k: round(v / total, 3) for k, v in libraries.most_common()},
        # Under 90 %: the threads' and event loops' own frames say nothing.
        "functions": shares([(k, v) for k, v in functions.most_common() if v < 0.9 * total], total),
        "garrison": shares(
            [(k, v) for k, v in functions.most_common() if k[:9] == "garrison/"], total
        ),
    }


def shares(counted: list[tuple[str, int]], total: int, top: int = 15) -> dict[str, float]:
    return {k: round(v / total, 3) for k, v in counted[:top]}


def library(frame: str) -> str:
    return next((name for needle, name in LIBRARIES if needle in frame), "other")


def short(frame: str) -> str:
    """``function (path/to/file.py:12)`` → ``function (to/file.py)``: lines merged."""
    function, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    if "/garrison/" in path:
        return f"garrison/{path.rsplit('/garrison/', 1)[1]} {function}"
    return f"{'/'.join(path.split('/')[-2:])} {function}"
