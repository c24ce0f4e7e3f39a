"""What a dynamic loader run by hand may load, decided ahead for the kernel.

``ld.so FILE`` runs FILE without any exec of it: the fanotify exec sensor never sees FILE, and
the loader's own file is one the kernel skips (every dynamic exec runs it). The BPF process
events see the loader's exec and, in a container where this module says so, kill it at that
exec — before the loader maps FILE — unless FILE is one of the names given here. So the
decision is taken in advance, by name, with the same evaluation as any exec:

- only while the model is active and a program it does not know is refused (the processes
  effect is prevent or block): otherwise an unknown FILE would run anyway, and is judged (and
  killed, if need be) once started, like before;
- the names are the model's learned programs (the names they ran by and the files they
  were) and the plain absolute paths a rule allows, each kept only if an exec of it, by
  its path alone, would not be refused (a denied list, a miner's name, lateral movement);
- never a multi-call binary: ``ld.so /bin/busybox nc`` runs the applet its arguments
  choose;
- a relative name, another name of a learned file (``/bin/ls`` for ``/usr/bin/ls``) or a
  name longer than the kernel's key is not there: such a run is killed and audited as such
  (:func:`killed_at_exec`).
"""

from __future__ import annotations

from collections.abc import Iterable

from garrison.policy.compiled import EffectivePolicy
from garrison.policy.decision import AttackType, Decision
from garrison.policy.evaluate import evaluate_process
from garrison.policy.inputs import ACTIVE, ModelView
from garrison.sensors.events import ProcessEvent
from garrison.sensors.multicall import is_multicall

KEY_BYTES = 255  # the kernel's key holds a name of at most this many bytes (LOADER_PATH - 1)
_REFUSING = ("prevent", "block")


def loader_names(
    policy: EffectivePolicy, model: ModelView, learned: Iterable[str]
) -> frozenset[str] | None:
    """The files a loader run by hand may load in a container of this policy and model
    (``learned``: the model's process names); None when the kernel need not decide (it
    kills nothing then)."""
    if model.state != ACTIVE or policy.processes.effect not in _REFUSING:
        return None
    names = set(learned) | policy.processes.allowed.plain_absolute()
    return frozenset(n for n in names if _fits(n) and not _refused(policy, model, n))


def _fits(name: str) -> bool:
    return name.startswith("/") and len(name.encode()) <= KEY_BYTES and not is_multicall(name)


def _refused(policy: EffectivePolicy, model: ModelView, path: str) -> bool:
    """Would an exec of ``path`` through the loader be refused for its path alone?"""
    event = ProcessEvent(
        container_id="", pid=0, ppid=0, path=path, argv=(path,), uid=0, user="root",
        parent_path="", time=0.0, source="proc_connector", resolved_path=path, loader="ld.so",
    )  # fmt: skip
    return any(d.effect in _REFUSING for d in evaluate_process(policy, model, event))


def killed_at_exec(policy: EffectivePolicy, event: ProcessEvent) -> Decision:
    """The finding for an exec the kernel killed that the evaluation alone would not refuse:
    a loader told a name the kernel was not given (relative, another name of a learned file)."""
    msg = (
        f"{event.path} launched through the loader {event.loader or 'by hand'} under a name "
        "not among those it may load (a relative name, or another name of a learned file): "
        "killed at its exec"
    )
    return Decision("prevent", "processes", AttackType.UNEXPECTED_PROCESS, policy.rule_name, msg)


def refuses(decisions: Iterable[Decision]) -> bool:
    return any(d.effect in _REFUSING for d in decisions)
