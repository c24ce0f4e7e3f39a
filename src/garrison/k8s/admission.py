"""``Admission``: the webhook's judge. An AdmissionReview in, the AdmissionReview answer out.

Each container a pod request adds (or changes the image of) is judged as the gate judges a
``docker create`` (docs/authz.md): the vulnerability rule that applies to it, on the stored
report of its image; the compliance rule that applies, on the checks its pod spec fails
(``_podspec.py``) and those of its image's report. A decision that blocks refuses the pod
(HTTP 403, the reasons in ``status.message``); one that alerts admits it with a warning,
which kubectl prints. Every decision is audited as the gate's are, except on a dry run: the
webhook is registered with ``sideEffects: NoneOnDryRun``.

An image never scanned is judged by ``AdmissionSettings.unscanned`` (docs/kubernetes.md):
``admit`` (the default) admits it with an alert that says so; ``refuse`` treats it as the
gate treats an image it could not scan: refused under a blocking rule, alerted under an
alerting one.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from garrison.audit.record import Audit
from garrison.k8s._podspec import check_pod_container, image_issues_for
from garrison.k8s._reports import Doc, ImageReports, findings_of, image_issues_of
from garrison.k8s._review import PodContainer, PodRequest, parse_review, response
from garrison.policy.collections import Subject
from garrison.scan.rules import Decision, Policies, VulnerabilityRule
from garrison.text import clip

log = logging.getLogger(__name__)
Unscanned = Literal["admit", "refuse"]
UNSCANNED_CHOICES: tuple[Unscanned, ...] = ("admit", "refuse")
# The API server keeps warnings short ("over 256 characters ... may be truncated", API
# reference, AdmissionResponse.warnings): cut them here, where the audit keeps the whole.
MAX_WARNING = 256


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    """How the webhook judges what the policies do not say."""

    unscanned: Unscanned = "admit"
    hostname: str = ""  # the audits' host; "" is this machine's name


@dataclass(frozen=True, slots=True)
class Judged:
    """One decision about one container of a pod."""

    container: PodContainer
    decision: Decision

    def text(self) -> str:
        what = self.container.section.removesuffix("s")  # "initContainer", "container"
        return f"{what} {self.container.name} ({self.container.image}): {self.decision.message}"


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reasons: tuple[str, ...] = ()  # why it is refused
    warnings: tuple[str, ...] = ()  # what alerted

    @classmethod
    def of(cls, judged: Sequence[Judged]) -> Verdict:
        reasons = tuple(j.text() for j in judged if j.decision.blocked)
        warnings = tuple(
            clip(j.text(), MAX_WARNING) for j in judged if j.decision.effect == "alert"
        )
        return cls(not reasons, reasons, warnings)


def utc_today() -> dt.date:
    """The day ``VulnerabilityPolicy.evaluate`` judges on when given none."""
    return dt.datetime.now(dt.UTC).date()


class Admission:
    """Thread-safe as its parts are (the store, the policies' reader). ``on_audit`` takes
    each decision's audit: ``lambda a: store.add_audits([a])``, as the gate's."""

    def __init__(
        self,
        reports: ImageReports,
        policies: Callable[[], Policies],
        *,
        on_audit: Callable[[Audit], object] | None = None,
        settings: AdmissionSettings | None = None,
        today: Callable[[], dt.date] = utc_today,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.reports = reports
        self.policies = policies
        self.on_audit = on_audit or (lambda _audit: None)
        self.settings = settings or AdmissionSettings()
        self.hostname = self.settings.hostname or socket.gethostname()
        self.today = today
        self.clock = clock

    def review(self, raw: bytes | str) -> dict[str, Any]:
        """The AdmissionReview answering ``raw``. InvalidInput when ``raw`` is not a review
        (HTTP 400); an error of the store or the policies goes up (HTTP 500), and the API
        server then applies the webhook's ``failurePolicy``."""
        review = parse_review(raw)
        if review.pod is None:
            return response(review.uid, True)
        verdict = self.judge(review.pod)
        return response(review.uid, verdict.allowed, "; ".join(verdict.reasons), verdict.warnings)

    def judge(self, pod: PodRequest) -> Verdict:
        policies = self.policies()
        reports: dict[str, Doc | None] = {}
        judged: list[Judged] = []
        for container in pod.containers:
            if container.image not in reports:
                reports[container.image] = self.reports.report(container.image)
            for decision in self._decisions(policies, pod, container, reports[container.image]):
                judged.append(Judged(container, decision))
                if not pod.dry_run:
                    self._audit(pod, container, decision, reports[container.image])
        return Verdict.of(judged)

    def _decisions(
        self, policies: Policies, pod: PodRequest, container: PodContainer, report: Doc | None
    ) -> Iterator[Decision]:
        subject = _subject(pod, container)
        yield self._vulnerabilities(policies, subject, report)
        image_issues = image_issues_of(report) if report is not None else []
        issues = [
            *check_pod_container(pod.spec, container.doc, pod.annotations),
            *image_issues_for(pod.spec, container.doc, image_issues),
        ]
        yield policies.compliance.evaluate(subject, issues)

    def _vulnerabilities(
        self, policies: Policies, subject: Subject, report: Doc | None
    ) -> Decision:
        rule = policies.vulnerability.rule_for(subject)
        if rule is None or rule.effect == "ignore":
            return Decision("vulnerability", "allow", rule.name if rule else "")
        if report is None:
            return self._unscanned(rule)
        return rule.evaluate(findings_of(report), self.today())

    def _unscanned(self, rule: VulnerabilityRule) -> Decision:
        blocked = self.settings.unscanned == "refuse" and rule.effect == "block"
        what = "the image has no scan report (garrison scan image stores one)"
        effect: Literal["alert", "block"] = "block" if blocked else "alert"
        return Decision("vulnerability", effect, rule.name, rule.refusal(blocked, what))

    def _audit(
        self, pod: PodRequest, container: PodContainer, decision: Decision, report: Doc | None
    ) -> None:
        kind = decision.kind
        audit = Audit(
            time=self.clock(),
            hostname=self.hostname,
            type=kind,
            attackType="vulnerableImage" if kind == "vulnerability" else "complianceViolation",
            effect=decision.effect,
            msg=decision.message or f"allowed by rule {decision.rule or '(none)'}",
            containerName=container.name,
            imageName=container.image,
            imageId=str(report.get("imageId", "")) if report is not None else "",
            labels=pod.labels_of(container),
            ruleName=decision.rule,
        )
        try:
            self.on_audit(audit)
        except Exception:
            # As in the gate: a failing audit sink must not turn a decision around.
            log.exception("audit sink failed")


def _subject(pod: PodRequest, container: PodContainer) -> Subject:
    """What rules' collections match: the container's image and name, the pod's labels (with
    the kubelet's) and namespace, and its node when the pod names one (rarely, before it is
    scheduled: a rule scoped to hosts applies to the pods bound to them)."""
    node = pod.spec.get("nodeName")
    return Subject(
        image=container.image,
        container=container.name,
        host=node if isinstance(node, str) else "",
        labels=pod.labels_of(container),
        namespace=pod.namespace,
    )
