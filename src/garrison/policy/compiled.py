"""A rule compiled for evaluation: matchers built once, effects looked up as plain attributes."""

from __future__ import annotations

from dataclasses import dataclass

from garrison.audit.record import AuditType
from garrison.policy.decision import Action, AttackType, Decision, RuleEffect
from garrison.policy.detections import ADMIN_ACCOUNT_FILES, BINARY_DIRS, SSH_KEYS
from garrison.policy.expression import Expression, ExprInput
from garrison.policy.matchers import IpSet, PathSet, PortSet
from garrison.policy.schema import (
    CustomRule,
    FilesystemDetections,
    ProcessDetections,
    RuntimeRule,
)


@dataclass(frozen=True, slots=True)
class CompiledCustom:
    name: str
    expression: Expression
    effect: Action
    message: str

    @classmethod
    def of(cls, rule: CustomRule) -> CompiledCustom:
        if rule.message:
            message = f"{rule.message} (custom rule {rule.name!r})"
        else:
            message = f"custom rule {rule.name!r} matched: {rule.compiled}"
        return cls(rule.name, rule.compiled, rule.effect, message)


@dataclass(frozen=True, slots=True)
class ProcessPolicy:
    effect: RuleEffect
    allowed: PathSet
    denied: PathSet
    denied_effect: Action
    detections: ProcessDetections
    custom: tuple[CompiledCustom, ...]

    @property
    def refuses(self) -> bool:
        """Can anything here refuse an exec (prevent, or block: a blocked container's
        process must not run on)? If not, every exec is allowed whatever the findings, and
        the kernel need not wait for them."""
        det = self.detections
        effects = [self.effect, det.crypto_miners, det.lateral_movement, det.reverse_shell]
        effects += [det.suid_binaries, det.drift, det.parent_child, det.fileless]
        effects += [c.effect for c in self.custom]
        if self.denied:
            effects.append(self.denied_effect)
        return any(effect in ("prevent", "block") for effect in effects)

    @property
    def kills_fileless(self) -> bool:
        """Are fileless execs refused? The kernel can then kill each at its exec, before
        the program runs (the BPF process events), whatever the rest of the policy says."""
        return self.detections.fileless in ("prevent", "block")


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    effect: RuleEffect
    listening_allowed: PortSet
    listening_denied: PortSet
    listening_denied_effect: Action
    outbound_allowed: PortSet
    outbound_denied: PortSet
    outbound_denied_effect: Action
    ips_allowed: IpSet
    ips_denied: IpSet
    ips_denied_effect: Action
    custom: tuple[CompiledCustom, ...]


@dataclass(frozen=True, slots=True)
class FilesystemPolicy:
    effect: RuleEffect
    allowed: PathSet
    denied: PathSet
    denied_effect: Action
    detections: FilesystemDetections
    custom: tuple[CompiledCustom, ...]

    @property
    def prevents(self) -> bool:
        """Does anything here refuse a write at open time? Then the container needs
        open-permission marks; otherwise write notifications do (block acts after the fact).
        New executables are known only once written, so they never prevent."""
        det = self.detections
        effects = [self.effect, det.binary_dirs, det.ssh_keys, det.admin_accounts]
        effects += [c.effect for c in self.custom]
        if self.denied:
            effects.append(self.denied_effect)
        return "prevent" in effects

    @property
    def protected_names(self) -> tuple[str, ...]:
        """The files this policy protects by a fixed name (``*`` may stand for a folder):
        a write through another hard link of one of them is judged as a write to it."""
        det, names = self.detections, list(self.denied.plain_absolute())
        if det.admin_accounts != "disable":
            names += sorted(ADMIN_ACCOUNT_FILES)
        if det.ssh_keys != "disable":
            names += [f"{home}/.ssh/{key}" for home in ("/root", "/home/*") for key in SSH_KEYS]
        return tuple(names)

    @property
    def readonly_paths(self) -> frozenset[str] | None:
        """The paths to make read-only when that alone refuses every write this policy
        refuses at open time: explicitly denied plain paths (``/etc``: the path and all
        below), and the binary directories when their detection prevents and no allowed path
        makes an exception inside them. None when a refusal depends on more than a path
        prefix — a glob or a bare name, the model (anomalies), a custom rule, the SSH keys or
        account files (some are made by the write itself) — so the open-permission guard
        must judge each open."""
        det = self.detections
        if "prevent" in (self.effect, det.ssh_keys, det.admin_accounts):
            return None
        if any(c.effect == "prevent" for c in self.custom):
            return None
        paths: set[str] = set()
        if self.denied and self.denied_effect == "prevent":
            plain = self.denied.plain_absolute()
            if not plain:
                return None
            paths |= plain
        if det.binary_dirs == "prevent":
            if self.allowed and not self.allowed.outside(BINARY_DIRS):
                return None
            paths |= BINARY_DIRS
        return frozenset(paths)


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    """What applies to one container: the rule that covers it, compiled."""

    rule_name: str
    processes: ProcessPolicy
    network: NetworkPolicy
    filesystem: FilesystemPolicy

    @property
    def needs_open_perm(self) -> bool:
        return self.filesystem.prevents


def _custom(rule: RuntimeRule, kind: str) -> tuple[CompiledCustom, ...]:
    return tuple(CompiledCustom.of(c) for c in rule.custom if c.kind == kind and not c.disabled)


def compile_rule(rule: RuntimeRule) -> EffectivePolicy:
    return EffectivePolicy(rule.name, _processes(rule), _network(rule), _filesystem(rule))


def _processes(rule: RuntimeRule) -> ProcessPolicy:
    p = rule.processes
    return ProcessPolicy(
        p.effect,
        PathSet(p.allowed),
        PathSet(p.denied.paths),
        p.denied.effect,
        p.detections,
        _custom(rule, "processes"),
    )


def _network(rule: RuntimeRule) -> NetworkPolicy:
    n = rule.network
    return NetworkPolicy(
        n.effect,
        PortSet(n.listening.allowed),
        PortSet(n.listening.denied.ports),
        n.listening.denied.effect,
        PortSet(n.outbound.allowed),
        PortSet(n.outbound.denied.ports),
        n.outbound.denied.effect,
        IpSet(n.ips.allowed),
        IpSet(n.ips.denied.ips),
        n.ips.denied.effect,
        _custom(rule, "network"),
    )


def _filesystem(rule: RuntimeRule) -> FilesystemPolicy:
    f = rule.filesystem
    return FilesystemPolicy(
        f.effect,
        PathSet(f.allowed),
        PathSet(f.denied.paths),
        f.denied.effect,
        f.detections,
        _custom(rule, "filesystem"),
    )


def custom_findings(
    policy: EffectivePolicy,
    rules: tuple[CompiledCustom, ...],
    kind: AuditType,
    subject: ExprInput,
) -> list[Decision]:
    """A finding for each custom rule whose expression holds for ``subject``."""
    return [
        Decision(c.effect, kind, AttackType.CUSTOM_RULE, policy.rule_name, c.message)
        for c in rules
        if c.expression(subject)
    ]
