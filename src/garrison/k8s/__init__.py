"""Kubernetes: a validating admission webhook that applies the vulnerability and compliance
policies (those of the Docker gate, docs/authz.md) to pods before they are stored.

>>> admission = Admission(StoredReports(store), StoredPolicies(store), on_audit=...)
>>> answer = admission.review(body)  # an AdmissionReview v1 response; InvalidInput: HTTP 400
>>> WebhookServer(admission, WebhookConfig("127.0.0.1:8443", cert, key)).run()

And, for the defender, deleting the pod of a container it blocked (``block_deletes_pod``):

>>> PodDeleter.in_cluster().delete(pod_of(labels))  # Deletion.DELETED, GONE or OTHER_POD

docs/kubernetes.md says what is checked, how unscanned images are treated and how the API
server is told to call the webhook.
"""

from __future__ import annotations

from garrison.k8s._reports import ImageReports, ScanStore, StoredReports
from garrison.k8s._review import (
    API_VERSION,
    MAX_REVIEW,
    PodContainer,
    PodRequest,
    Review,
    parse_review,
)
from garrison.k8s.admission import UNSCANNED_CHOICES, Admission, AdmissionSettings, Unscanned
from garrison.k8s.pods import (
    Deletion,
    FakePods,
    PodDeleter,
    PodRef,
    Pods,
    check_pod,
    pod_of,
)

__all__ = [
    "API_VERSION",
    "MAX_REVIEW",
    "UNSCANNED_CHOICES",
    "Admission",
    "AdmissionSettings",
    "Deletion",
    "FakePods",
    "ImageReports",
    "PodContainer",
    "PodDeleter",
    "PodRef",
    "PodRequest",
    "Pods",
    "Review",
    "ScanStore",
    "StoredReports",
    "Unscanned",
    "check_pod",
    "parse_review",
    "pod_of",
]
