"""May the kernel skip every future exec of a file? (``Verdict.ALLOW_ALWAYS``.)

A fanotify ignore mark sits on the file's inode: from then on no exec of it reaches Garrison,
whatever name it is called by, with whatever arguments, by whichever user or parent, until the
file is modified (the kernel drops the mark then) or the defender clears the marks. So a file
qualifies only when no exec of it could be refused:

- this exec has no finding at all (anything found is judged again every time);
- it is called by its own name (``path`` is ``resolved_path``) and is no multi-call binary
  (busybox runs ``nc`` for ``/bin/nc``): names are how rules tell programs apart;
- the model is active and knows it, or it is explicitly allowed; or the model learns and the
  kernel records every skipped exec for it (``recorded``: the BPF process events, which read
  the name, arguments and user at the exec itself — in learning every exec is knowledge);
- no check that reads what varies between execs could prevent or block: custom process rules,
  parent-child, the Stratum argument of the miner check, the reverse-shell check on a shell;
- it is no setuid file (its mode is known), since ``chmod`` does not drop an ignore mark
  (with the BPF process events, an exec of a skipped file made setuid later is still sent by
  the kernel and checked after the fact).

The defender does not look at a skipped exec again (its proc connector does not read it). The
answer holds for one rule set and one model state: the defender clears its ignore marks when
``PolicyEngine.version`` or the model's state changes.

The dynamic loader is the defender's call, not this function's: every dynamic exec raises
an event for it, and ignoring it lets ``ld.so /path/to/binary`` run a binary without an exec
event of its own (the proc connector still sees the loader started with that argument).
"""

from __future__ import annotations

from garrison.policy.compiled import EffectivePolicy
from garrison.policy.detections import is_setuid, reads_shell_stdio
from garrison.policy.evaluate import evaluate_process
from garrison.policy.inputs import ACTIVE, ExecFacts, ModelView
from garrison.policy.matchers import basename
from garrison.sensors.events import ProcessEvent

MULTICALL_BINARIES = frozenset({"busybox", "toybox", "toolbox", "coreutils"})
_ACTS = ("prevent", "block")


def exec_ignorable(
    policy: EffectivePolicy,
    model: ModelView,
    event: ProcessEvent,
    facts: ExecFacts,
    recorded: bool = False,
) -> bool:
    """True when every exec of ``event``'s file would be allowed, so it may be ignored.
    ``recorded``: the skipped execs are recorded after all (while the model learns)."""
    path = event.path
    if event.resolved_path != path or basename(path) in MULTICALL_BINARIES:
        return False
    if facts.drifted or facts.file_mode is None or is_setuid(facts.file_mode):
        return False
    procs = policy.processes
    if model.state != ACTIVE:
        if not recorded:
            return False
    elif not (model.knows_process(path) or procs.allowed.matches(path)):
        return False
    if _varying_check_acts(policy, path):
        return False
    return not evaluate_process(policy, model, event, facts)


def _varying_check_acts(policy: EffectivePolicy, path: str) -> bool:
    """Could a check on what varies between execs prevent or block? (Such checks must see
    every exec in the permission path; alerts can come after the fact.)"""
    procs = policy.processes
    det = procs.detections
    # Custom process rules and the parent-child check read what varies between execs (the
    # parent, the user, the arguments). After the fact, the proc connector reads them from
    # /proc, which a short-lived process has left already: even their alerts need every exec.
    if procs.custom or det.parent_child != "disable":
        return True
    if det.crypto_miners in _ACTS:
        return True
    # A shell's descriptors are read in the permission path only: an ignored shell would
    # never be found driven by a socket, even for an alert.
    return reads_shell_stdio(det.reverse_shell, path)
