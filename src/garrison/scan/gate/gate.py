"""The gate: answers Docker's authorization requests from the scan results and the rules.

It never raises and never allows by accident: any request it cannot read or judge on a call it
polices is refused with a message saying why. Read-only calls are allowed at once: they are
also how the gate itself reads images and containers, and those calls pass through the plugin
while the request that caused them waits.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from garrison.audit.record import Audit
from garrison.errors import GarrisonError, InvalidInput, NotFound
from garrison.policy.collections import Subject
from garrison.scan.compliance import (
    check_container,
    check_exec,
    check_image,
    check_image_for_container,
)
from garrison.scan.compliance.users import PasswdReader, no_passwd
from garrison.scan.gate import gojson
from garrison.scan.gate.images import ImageRefs, changes_images, ended_call
from garrison.scan.gate.request import AuthZRequest, Call, parse_authz
from garrison.scan.gate.routes import version_below
from garrison.scan.gate.scans import DEFAULT_SCAN_TIMEOUT, BoundedScans, OnScanned, ScanTimeout
from garrison.scan.gate.verdicts import VulnerabilityVerdicts
from garrison.scan.rules import PREFIX, Decision, Policies
from garrison.scan.scanner import ImageRef, Scanner
from garrison.scan.types import ComplianceIssue, ScanResult

log = logging.getLogger(__name__)
NAMESPACE_LABEL = "io.kubernetes.pod.namespace"


@dataclass(frozen=True, slots=True)
class Reply:
    """The plugin's answer; ``Err`` is left empty, dockerd treats it as a plugin failure."""

    allow: bool
    msg: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"Allow": self.allow, "Msg": self.msg, "Err": ""}


ALLOW = Reply(True)


@dataclass(frozen=True, slots=True)
class ContainerFacts:
    """What the gate needs of an existing container (for start and exec)."""

    id: str
    name: str
    image: str
    image_id: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


ContainerLookup = Callable[[str], "ContainerFacts | None"]
# A container's /etc/passwd by id: None when it has none; GarrisonError when unreadable.
PasswdLookup = Callable[[str], "str | None"]
START_BODY_GONE = "1.24"  # the API version from which dockerd refuses a start with a body


def refusal(reason: str) -> Reply:
    return Reply(False, f"{PREFIX} Container operation blocked: {reason}")


class Gate:
    """One per plugin process; thread-safe (the server calls it from a thread pool)."""

    def __init__(
        self,
        scanner: Scanner,
        policies: Callable[[], Policies],
        *,
        on_audit: Callable[[Audit], None] | None = None,
        is_blocked: Callable[[str], bool] | None = None,
        containers: ContainerLookup | None = None,
        passwd: PasswdLookup | None = None,
        hostname: str = "",
        scan_timeout: float = DEFAULT_SCAN_TIMEOUT,
        on_scanned: OnScanned | None = None,
    ) -> None:
        self.scanner = scanner
        self.scans = BoundedScans(scanner, scan_timeout, on_scanned)
        self.verdicts = VulnerabilityVerdicts()
        self.images = ImageRefs(scanner.resolve)
        self.policies = policies
        self.on_audit = on_audit or (lambda _audit: None)
        self.is_blocked = is_blocked
        self.containers = containers
        self.passwd = passwd
        self.hostname = hostname or socket.gethostname()

    def authorize(self, raw: bytes) -> Reply:
        """Answer one ``AuthZPlugin.AuthZReq`` message; never raises."""
        try:
            req = parse_authz(raw)
        except InvalidInput as exc:
            return refusal(str(exc))
        self.request_seen(req)
        reply = self.decide(req)
        if not reply.allow:
            self.request_refused(req)
        return reply

    def decide(self, req: AuthZRequest) -> Reply:
        """Answer a parsed request; never raises."""
        try:
            return self.judge(req)
        except InvalidInput as exc:
            return refusal(str(exc))
        except Exception as exc:
            log.exception("authorization request failed")
            return refusal(f"the authorization plugin failed on this request ({exc})")

    # Every call as it passes, for the images kept resolved (images.py) -------------------

    def request_seen(self, req: AuthZRequest) -> None:
        """Told of each request before it is answered."""
        if changes_images(req.route):
            self.images.changing()

    def request_refused(self, req: AuthZRequest) -> None:
        """Told of each request refused: dockerd runs none of them, no AuthZRes follows."""
        if changes_images(req.route):
            self.images.changed()

    def response_seen(self, raw: bytes) -> None:
        """Told of each ``AuthZPlugin.AuthZRes`` message: the call it names is over."""
        route = ended_call(raw)
        if route is None:
            self.images.forget()
        elif changes_images(route):
            self.images.changed()

    def activated(self) -> None:
        """Told of each ``Plugin.Activate``: a daemon (re)started."""
        self.images.restart()

    def judge(self, req: AuthZRequest) -> Reply:
        handler = self._handlers.get(req.call)
        return handler(self, req) if handler is not None else ALLOW

    def _unjudged(self, req: AuthZRequest) -> Reply:
        """Calls that make containers the gate never sees (swarm services, managed plugins)."""
        what = f"{req.method} {req.route.template}"
        return self._refuse_call(
            req, f"{what} runs containers that the Garrison gate cannot judge; refused"
        )

    def _unknown(self, req: AuthZRequest) -> Reply:
        reason = req.route.reason or "not an Engine API route Garrison knows"
        return self._refuse_call(
            req, f"{req.method} {req.uri!r} could change a container and Garrison cannot "
            f"classify it ({reason}); refused"
        )  # fmt: skip

    def _refuse_call(self, req: AuthZRequest, reason: str) -> Reply:
        reply = refusal(reason)
        subject = Subject("", "", self.hostname)
        self._audit(Decision("compliance", "block", "", reply.msg), _AuditContext(subject, "", ""))
        return reply

    # containers/create ---------------------------------------------------------------

    def _create(self, req: AuthZRequest) -> Reply:
        body = gojson.create_body(req.required_body())
        image = body.get("Image")
        if not isinstance(image, str) or not image:
            raise InvalidInput("the create request names no image")
        subject = _subject(image, req.query.get("name", ""), body.get("Labels"), self.hostname)
        policies = self.policies()
        ref = self._resolve(image)
        vulnerability, image_issues = self._vulnerabilities(policies, subject, ref)
        # The create's User (--user) overrides the image's USER: GCIS-4.1 is judged on it.
        issues = [*check_container(body), *check_image_for_container(body, image_issues)]
        compliance = policies.compliance.evaluate(subject, issues)
        context = _AuditContext(subject, ref.id if ref else "", "")
        for decision in (vulnerability, compliance):
            self._audit(decision, context)
        return _reply([compliance, vulnerability])

    def _resolve(self, image: str) -> ImageRef | None:
        """None when the image is not there: dockerd answers 404 and the client pulls it."""
        try:
            return self.images.resolve(image)
        except NotFound:
            return None

    def _vulnerabilities(
        self, policies: Policies, subject: Subject, ref: ImageRef | None
    ) -> tuple[Decision, Sequence[ComplianceIssue]]:
        rule = policies.vulnerability.rule_for(subject)
        if ref is None:
            return Decision("vulnerability", "allow", rule.name if rule else ""), ()
        if rule is None or rule.effect == "ignore":
            issues = check_image(ref.inspect, ref.history)
            return Decision("vulnerability", "allow", rule.name if rule else ""), issues
        try:
            result: ScanResult = self.scans.scan(ref)
        except (GarrisonError, ScanTimeout) as exc:
            blocked = rule.effect == "block"
            why = str(exc) if isinstance(exc, ScanTimeout) else f"could not be scanned: {exc}"
            text = rule.refusal(blocked, f"the image {why}")
            issues = check_image(ref.inspect, ref.history)
            return Decision(
                "vulnerability", "block" if blocked else "alert", rule.name, text
            ), issues
        # rule is policies.vulnerability.rule_for(subject), the rule its evaluate() applies.
        return self.verdicts.decide(rule, result.findings), result.compliance

    # containers/{id}/start and /exec ---------------------------------------------------

    def _start(self, req: AuthZRequest) -> Reply:
        """start, restart, unpause: refused while the container is blocked. Before API 1.24 a
        start may carry a host configuration that dockerd applies (moby v20.10
        ``postContainersStart``): never judged, so refused."""
        version = req.route.version
        if (
            version
            and version_below(version, START_BODY_GONE)
            and req.route.template.endswith("/start")
        ):
            return self._refuse_call(
                req, f"a start through API version {version} may change the container's host "
                f"configuration, which Garrison does not judge; use API {START_BODY_GONE} or "
                "later"
            )  # fmt: skip
        return self._unless_blocked(req)

    def _update(self, req: AuthZRequest) -> Reply:
        """An update can change the restart policy that keeps a blocked container stopped."""
        return self._unless_blocked(req)

    def _unless_blocked(self, req: AuthZRequest) -> Reply:
        if self.is_blocked is None:
            return ALLOW
        facts = self._lookup(req.container_ref)
        container_id = facts.id if facts else req.container_ref
        if not self.is_blocked(container_id):
            return ALLOW
        name = facts.name if facts else req.container_ref
        reply = refusal(f"container {name} is blocked by a runtime rule")
        subject = _facts_subject(facts, req.container_ref, self.hostname)
        decision = Decision("compliance", "block", "", reply.msg)
        self._audit(decision, _AuditContext(subject, facts.image_id if facts else "", container_id))
        return reply

    def _exec(self, req: AuthZRequest) -> Reply:
        body = gojson.exec_body(req.required_body())
        facts = self._lookup(req.container_ref)
        subject = _facts_subject(facts, req.container_ref, self.hostname)
        issues = check_exec(body, self._passwd_of(facts, req.container_ref))
        decision = self.policies().compliance.evaluate(subject, issues)
        command = " ".join(str(part) for part in body.get("Cmd") or [])
        context = _AuditContext(subject, facts.image_id if facts else "", _id(facts), command)
        self._audit(decision, context, attack="privilegedExec")
        return _reply([decision])

    def _passwd_of(self, facts: ContainerFacts | None, ref: str) -> PasswdReader:
        lookup = self.passwd
        if lookup is None:
            return no_passwd
        target = facts.id if facts else ref
        return lambda: lookup(target)

    def _lookup(self, ref: str) -> ContainerFacts | None:
        if self.containers is None or not ref:
            return None
        try:
            return self.containers(ref)
        except NotFound:
            return None

    _handlers: ClassVar[dict[Call, Callable[[Gate, AuthZRequest], Reply]]] = {
        Call.CREATE: _create,
        Call.START: _start,
        Call.UPDATE: _update,
        Call.EXEC: _exec,
        Call.UNJUDGED: _unjudged,
        Call.UNKNOWN: _unknown,
    }

    # audit ------------------------------------------------------------------------------

    def _audit(self, decision: Decision, ctx: _AuditContext, attack: str = "") -> None:
        kind = decision.kind
        default_attack = "vulnerableImage" if kind == "vulnerability" else "complianceViolation"
        msg = decision.message or f"allowed by rule {decision.rule or '(none)'}"
        audit = Audit(
            time=time.time(),
            hostname=self.hostname,
            type=kind,
            attackType=attack or default_attack,
            effect=decision.effect,
            msg=msg,
            containerId=ctx.container_id,
            containerName=ctx.subject.container,
            imageName=ctx.subject.image,
            imageId=ctx.image_id,
            labels=dict(ctx.subject.labels),
            ruleName=decision.rule,
            command=ctx.command,
        )
        try:
            self.on_audit(audit)
        except Exception:
            # A failing audit sink must not turn a decision around or break the daemon.
            log.exception("audit sink failed")


@dataclass(frozen=True, slots=True)
class _AuditContext:
    subject: Subject
    image_id: str
    container_id: str
    command: str = ""


def _reply(decisions: Sequence[Decision]) -> Reply:
    blocked = [d.message for d in decisions if d.blocked]
    return Reply(False, "; ".join(blocked)) if blocked else ALLOW


def _subject(image: str, name: str, labels: Any, host: str) -> Subject:
    plain = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}
    return Subject(image, name.lstrip("/"), host, plain, plain.get(NAMESPACE_LABEL, ""))


def _facts_subject(facts: ContainerFacts | None, ref: str, host: str) -> Subject:
    if facts is None:
        return Subject("", ref, host)
    return _subject(facts.image, facts.name, facts.labels, host)


def _id(facts: ContainerFacts | None) -> str:
    return facts.id if facts else ""
