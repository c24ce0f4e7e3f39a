"""``garrison scan``: an image's vulnerabilities and compliance, a container's compliance."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from garrison.cli.options import (
    ContainerdAddress,
    ContainerdNamespace,
    RuntimeOption,
    open_local_console,
    runtime_kind,
    shown,
)
from garrison.cli.render import Column, free, key, table
from garrison.errors import InvalidInput
from garrison.scan.report import issue_json, result_json
from garrison.scan.types import ComplianceIssue, Finding, ScanResult, Severity

# The Docker SDK and the scanner (the vulnerability database, univers, SQLAlchemy) are imported
# by the commands that scan, never for --help (issue 17).
if TYPE_CHECKING:
    import docker

    from garrison.scan.scanner import Scanner

DEFAULT_DATA_DIR = Path("/var/lib/garrison")
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
# A fixed API version: the client then makes no call before the first real one (the gate
# may be up before dockerd), and Docker 20.10 and later all speak it.
API_VERSION = "1.41"
STEPS = ("resolve", "compliance", "inventory", "vulnerabilities")
MAX_EXIT_CODE = 255

app = typer.Typer(
    help="Scan images (vulnerabilities, compliance) and containers (compliance); each "
    "report is kept in the store of --data-dir."
)
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, highlight=False)

DockerHost = Annotated[
    str,
    typer.Option("--docker-host", envvar="DOCKER_HOST", help="The Docker engine to talk to."),
]
DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir", envvar="GARRISON_DATA_DIR", help="Garrison's data folder (store, vulndb)."
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def docker_client(docker_host: str) -> docker.DockerClient:
    import docker  # noqa: PLC0415

    from garrison.scan.scanner import docker_errors  # noqa: PLC0415

    with docker_errors(f"Docker engine {docker_host}"):
        return docker.DockerClient(base_url=docker_host, version=API_VERSION, timeout=300)


def scanner_for(
    runtime: str | None,
    docker_host: str,
    address: str | None,
    namespace: str | None,
    vulndb: Any,
) -> Scanner:
    """The scanner over the runtime the options name: containerd only when asked for; docker
    and auto (and nothing said) keep the Docker engine, as scans always did."""
    from garrison.config import DEFAULT_CONTAINERD_ADDRESS, DEFAULT_NAMESPACE  # noqa: PLC0415
    from garrison.scan.scanner import Scanner  # noqa: PLC0415

    if runtime_kind(runtime) == "containerd":
        return Scanner.for_containerd(
            address or DEFAULT_CONTAINERD_ADDRESS, namespace or DEFAULT_NAMESPACE, vulndb
        )
    return Scanner.for_docker(docker_client(docker_host), vulndb)


def open_vulndb(data_dir: Path) -> Any:
    """The vulnerability database in ``data_dir``, or None (with a warning) when absent."""
    from garrison.scan.vulndb import VulnDB  # noqa: PLC0415 (only scans need it)

    db = VulnDB.in_data_dir(data_dir)
    if not db.exists():
        err.print(f"[yellow]warning:[/yellow] no vulnerability database at {db.path}; "
                  "run `garrison vulndb import` or `update` (compliance only)")  # fmt: skip
        return None
    return db


def parse_severities(text: str) -> set[Severity]:
    try:
        return {Severity.parse(part) for part in text.split(",") if part.strip()}
    except ValueError as exc:
        raise InvalidInput(f"--severity: {exc}") from exc


@app.command("image")
def image(
    name: Annotated[
        str, typer.Argument(help="Image name or id on the engine (in containerd's namespace).")
    ],
    as_json: AsJson = False,
    sbom: Annotated[
        str | None, typer.Option("--sbom", help="Print an SBOM instead (format: cyclonedx).")
    ] = None,
    exit_code: Annotated[
        int, typer.Option("--exit-code", help="Exit with this status when findings remain.")
    ] = 0,
    severity: Annotated[
        str, typer.Option("--severity", help="Severities shown and counted, comma-separated.")
    ] = "unknown,low,medium,high,critical",
    docker_host: DockerHost = DEFAULT_DOCKER_HOST,
    runtime: RuntimeOption = None,
    containerd_address: ContainerdAddress = None,
    containerd_namespace: ContainerdNamespace = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Scan an image: packages, vulnerabilities (Trivy-like table) and image compliance. The
    report, with every severity, is kept in the store (the console's /api/v1/images).

    The image is the Docker engine's unless --runtime containerd names containerd (then one
    namespace of it, read through ctr); for a scan, auto means the Docker engine."""
    if sbom not in (None, "cyclonedx"):
        raise InvalidInput(f"--sbom: unknown format {sbom!r} (supported: cyclonedx)")
    if not 0 <= exit_code <= MAX_EXIT_CODE:
        raise InvalidInput(f"--exit-code {exit_code}: an exit status is 0 to {MAX_EXIT_CODE}")
    wanted = parse_severities(severity)
    scanner = scanner_for(runtime, docker_host, containerd_address, containerd_namespace,
                          open_vulndb(data_dir))  # fmt: skip
    with open_local_console(data_dir) as console, _progress() as tell:
        result = console.scan_image(scanner, name, progress=tell)
    findings = [f for f in result.findings if f.severity in wanted]
    if sbom:
        from garrison.scan.sbom import cyclonedx_json  # noqa: PLC0415 (heavy import)

        print(cyclonedx_json(result.inventory))
    elif as_json:
        print(json.dumps(result_json(result, findings), indent=2))
    else:
        print_result(result, findings)
    if exit_code and findings:
        raise typer.Exit(exit_code)


@app.command("container")
def container(
    ref: Annotated[str, typer.Argument(help="Container id or name.")],
    as_json: AsJson = False,
    docker_host: DockerHost = DEFAULT_DOCKER_HOST,
    runtime: RuntimeOption = None,
    containerd_address: ContainerdAddress = None,
    containerd_namespace: ContainerdNamespace = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Check a container's configuration (and its image's) against the compliance checks.
    The report is kept in the store.

    The container is the Docker engine's unless --runtime containerd names containerd (its
    id or nerdctl name there; its OCI spec read as Docker's inspect, docs/scanning.md); for
    a scan, auto means the Docker engine."""
    scanner = scanner_for(runtime, docker_host, containerd_address, containerd_namespace, None)
    with open_local_console(data_dir) as console:
        check = console.scan_container(scanner, ref)
    issues = list(check.issues)
    if as_json:
        print(json.dumps([issue_json(i) for i in issues], indent=2))
        return
    out.print(f"[bold]{shown(check.container_name)}[/bold] ({shown(check.container_id[:12])})")
    print_issues(issues)


@contextmanager
def _progress() -> Iterator[Any]:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("scanning", total=len(STEPS))

        def tell(step: str) -> None:
            progress.update(task, description=f"scanning: {step}", advance=1)

        yield tell


def totals(severities: Sequence[Severity]) -> str:
    counts = [(s, severities.count(s)) for s in sorted(Severity, reverse=True)]
    return ", ".join(f"{str(s).upper()}: {n}" for s, n in counts)


def print_result(result: ScanResult, findings: Sequence[Finding]) -> None:
    inv = result.inventory
    out.print(f"\n[bold]{shown(inv.image_name)}[/bold] ({shown(inv.os.family)} "
              f"{shown(inv.os.version)}) "
              f"{len(inv.packages)} packages")  # fmt: skip
    out.print(f"Total: {len(findings)} ({totals([f.severity for f in findings])})\n")
    if findings:
        ordered = sorted(findings, key=lambda f: (f.package.name, -f.severity, f.id))
        out.print(table(FINDINGS, ordered))
    print_issues(list(result.compliance))
    for problem in result.errors:
        err.print(f"[yellow]skipped:[/yellow] {shown(problem)}")


def print_issues(issues: Sequence[ComplianceIssue]) -> None:
    out.print(f"Compliance: {len(issues)} ({totals([i.severity for i in issues])})")
    if issues:
        out.print(table(ISSUES, issues))


COLOURS = {Severity.CRITICAL: "red", Severity.HIGH: "magenta", Severity.MEDIUM: "yellow"}


def _sev(severity: Severity) -> str:
    colour = COLOURS.get(severity)
    text = str(severity).upper()
    return f"[{colour}]{text}[/{colour}]" if colour else text


FINDINGS: list[Column[Finding]] = [
    key("library", lambda f: shown(f.package.name)),
    key("vulnerability", lambda f: shown(f.id)),
    key("severity", lambda f: _sev(f.severity)),
    key("installed", lambda f: shown(f.installed_version)),
    key("fixed", lambda f: shown(f.fixed_version or "-")),
    free("title", lambda f: shown(f.summary[:60])),
]
ISSUES: list[Column[ComplianceIssue]] = [
    key("check", lambda i: i.check_id),
    key("severity", lambda i: _sev(i.severity)),
    free("title", lambda i: i.title),
    free("detail", lambda i: shown(i.detail)),
    free("fix", lambda i: shown(i.fix)),
]
