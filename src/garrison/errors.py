"""Garrison's exceptions, mapped once at the boundary of each outside system.

The hierarchy::

    GarrisonError                 every error Garrison raises on purpose
    ├── ConfigError               a bad option, config file or environment value
    ├── EngineError               the private development Docker engine
    │   └── PackageInstallError   a Debian package it needs could not be installed
    ├── ImageBuildError           a test image could not be built or imported
    ├── RuntimeUnavailable        the container runtime (Docker) cannot be reached
    ├── RuntimeRefused            the runtime answered but refused a request
    ├── ContainerGone             a container vanished while it was being inspected
    ├── ProcessGone               a process exited while /proc was being read
    ├── SensorError               a kernel event source could not be set up
    │   └── NotOwnFilesystem      a container's root is not a file system of its own
    ├── StoreError                the store could not read or write
    ├── ConsoleError              a remote console (GARRISON_CONSOLE_URL) said no
    │   ├── ConsoleUnreachable    it did not answer: connection refused, timed out, TLS failed
    │   └── ConsoleDenied         it refused the token (401) or the token's role (403)
    ├── KubernetesError           the Kubernetes API server did not do what was asked
    │   ├── KubernetesUnreachable it did not answer: connection refused, timed out, TLS failed
    │   └── KubernetesDenied      it refused the service account's token (401) or its RBAC (403)
    ├── NotFound                  a named object (model, rule, container…) does not exist
    ├── InvalidInput              malformed user input (rule, policy, OSV record, request…)
    ├── ScanError                 an image could not be scanned
    ├── ForensicsError            a forensics bundle could not be written (it was discarded)
    └── DeliveryFailed            an alert channel did not take an alert (reason redacted)

A user sees ``str(error)``: one clear line, never a traceback, for a mistake they made.
"""

from __future__ import annotations


class GarrisonError(Exception):
    """Base of every error Garrison raises on purpose."""


class ConfigError(GarrisonError):
    """A bad option, configuration file or environment value."""


class EngineError(GarrisonError):
    """The private development Docker engine failed to start, answer or stop."""


class PackageInstallError(EngineError):
    """A Debian package needed by the development engine could not be installed."""


class ImageBuildError(GarrisonError):
    """A test image could not be built or imported."""


class RuntimeUnavailable(GarrisonError):
    """The container runtime cannot be reached."""


class RuntimeRefused(GarrisonError):
    """The runtime answered but refused a request (a conflict, a bad parameter)."""


class ContainerGone(GarrisonError):
    """A container vanished while Garrison was looking at it."""

    def __init__(self, container_id: str, msg: str = "") -> None:
        self.container_id = container_id
        super().__init__(msg or f"container {container_id[:12]} is gone")


class ProcessGone(GarrisonError):
    """A process exited (or its pid was reused) while /proc was being read."""

    def __init__(self, pid: int, msg: str = "") -> None:
        self.pid = pid
        super().__init__(msg or f"process {pid} is gone")


class SensorError(GarrisonError):
    """A kernel event source could not be set up."""


class NotOwnFilesystem(SensorError):
    """A container's root is not a file system of its own (a vfs directory, a MergedDir not
    mounted where the defender runs): a filesystem mark on it would cover the host's."""

    def __init__(self, container_id: str, path: str | None, why: str) -> None:
        self.container_id = container_id
        self.path = path
        self.why = why
        super().__init__(f"container {container_id[:12]}: {why}")


class StoreError(GarrisonError):
    """The store could not read or write."""


class ConsoleError(GarrisonError):
    """A remote console (``GARRISON_CONSOLE_URL``) answered with an error of its own, or was
    asked for what only the local store can do."""


class ConsoleUnreachable(ConsoleError):
    """No answer from the remote console: connection refused, timed out, TLS failed."""


class ConsoleDenied(ConsoleError):
    """The remote console refused the token (unknown, expired, revoked) or its role."""


class KubernetesError(GarrisonError):
    """The Kubernetes API server did not do what was asked: an unexpected status (a 5xx, a
    429). ``status`` is the HTTP status, None when there was no answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class KubernetesUnreachable(KubernetesError):
    """No answer from the API server: connection refused, timed out, its certificate not
    signed by the service account's CA."""


class KubernetesDenied(KubernetesError):
    """The API server refused the service account's token (401) or what its RBAC roles
    allow (403): a deployment to fix, not something to try again."""


class NotFound(GarrisonError):
    """A named object does not exist."""


class InvalidInput(GarrisonError):
    """Malformed input from a user or a file: a rule, a policy, a record, a request."""


class ScanError(GarrisonError):
    """An image could not be scanned."""


class ForensicsError(GarrisonError):
    """A forensics bundle could not be written: its compressed stream broke (a full disk, an
    I/O error) or it was used after it was finished. The partial file is removed first, so
    what is left on disk is either a whole bundle or nothing."""


class DeliveryFailed(GarrisonError):
    """An alert channel did not take an alert: refused, unreachable or silent past the timeout.

    ``str(error)`` is a short reason that names the channel by its redacted URL: it never
    carries a password or token, so it can be logged and shown as it is.
    """
