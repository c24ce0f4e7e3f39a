"""``garrison run``: the all-in-one default on one host."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from garrison.audit.retention import Retention
from garrison.cli.defaults import DEFAULT_DATA_DIR
from garrison.cli.options import ContainerdAddress, ContainerdNamespace, RuntimeOption, out
from garrison.errors import ConfigError

# The defender, the console, pydantic's settings, asyncio and the Docker SDK are imported by
# the functions that run them: `garrison --help` imports this module too (issue 17).
if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from garrison.api.server import ConsoleServer
    from garrison.config import Settings
    from garrison.console import Console
    from garrison.console.link import ConsoleLink
    from garrison.runtime.base import ContainerRuntime
    from garrison.runtime.choose import RuntimeChoice
    from garrison.watchdog import WatchdogState

log = logging.getLogger(__name__)


def resolve_runtime(settings: Settings) -> Settings:
    """The settings with the runtime to defend resolved (``auto`` decided), once it answers.

    Raises RuntimeUnavailable, saying how to start one, when it does not: ``garrison run``
    never installs packages or starts an engine of its own (``garrison engine up`` is the
    development helper that does, and ``scripts/run`` calls it).
    """
    from garrison.runtime.choose import choose_runtime  # noqa: PLC0415

    choice = choose_runtime(
        settings.runtime,
        settings.docker_host,
        settings.containerd_address,
        settings.containerd_namespace,
        command=_command_name(),
    )
    return settings.model_copy(update=_runtime_fields(choice))


def _runtime_fields(choice: RuntimeChoice) -> dict[str, str]:
    found = {"runtime": choice.kind}
    if choice.kind == "docker":
        return found | {"docker_host": choice.docker_host}
    return found | {
        "containerd_address": choice.containerd_address,
        "containerd_namespace": choice.namespace,
    }


def open_runtime(settings: Settings) -> ContainerRuntime:
    """The runtime ``settings`` name; ``auto`` is decided again by asking (the watchdog's
    defender, started with --runtime auto)."""
    from garrison.runtime.choose import choose_runtime, named_runtime  # noqa: PLC0415

    s = settings
    args = (s.runtime, s.docker_host, s.containerd_address, s.containerd_namespace)
    choice = named_runtime(*args) or choose_runtime(*args, command=_command_name())
    return choice.open()


def run(
    runtime: RuntimeOption = None,
    containerd_address: ContainerdAddress = None,
    containerd_namespace: ContainerdNamespace = None,
    docker_host: Annotated[
        str | None,
        typer.Option(
            "--docker-host",
            help="Docker engine to defend (env GARRISON_DOCKER_HOST, then DOCKER_HOST; "
            "default unix:///var/run/docker.sock).",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Store folder (env GARRISON_DATA_DIR; default /var/lib/garrison)."
        ),
    ] = None,
    learning_period: Annotated[
        str | None,
        typer.Option(
            "--learning-period",
            help="Learning time per image model: 90, 30s, 15m, 1h (default 1h).",
        ),
    ] = None,
    network_interval: Annotated[
        str | None,
        typer.Option("--network-interval", help="Socket polling interval (default 1s)."),
    ] = None,
    process_events: Annotated[
        str | None,
        typer.Option(
            "--process-events",
            help="Process events source: auto (default: bpf, else proc_connector), bpf, "
            "proc_connector.",
        ),
    ] = None,
    write_prevention: Annotated[
        str | None,
        typer.Option(
            "--write-prevention",
            help="How file prevent rules refuse writes: auto (default: read-only mounts for "
            "plain paths, else open-permission events), fanotify (always open-permission "
            "events, EPERM).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", envvar="GARRISON_CONFIG", help="YAML settings file."),
    ] = None,
    # Read by nothing: kept (hidden) so that scripts written when garrison run started a
    # private engine still run (docs/cli.md#garrison-run).
    engine_dir: Annotated[
        Path | None,
        typer.Option(
            "--engine-dir",
            help="No effect any more, still accepted for scripts that pass it: garrison run "
            "never starts an engine (`garrison engine up --state-dir DIR` does).",
            hidden=True,
        ),
    ] = None,
    watchdog: Annotated[
        bool | None,
        typer.Option(
            "--watchdog/--no-watchdog",
            help="Run the defender under a watchdog process that kills and restarts it when "
            "it stops answering the kernel (default on; env GARRISON_WATCHDOG).",
            show_default=False,
        ),
    ] = None,
    metrics_address: Annotated[
        str | None,
        typer.Option(
            "--metrics-address",
            help="Serve Prometheus metrics on HOST:PORT, e.g. 127.0.0.1:9464 (default: none).",
        ),
    ] = None,
    console_address: Annotated[
        str | None,
        typer.Option(
            "--console-address",
            help="Serve the console (web pages and REST API) on HOST:PORT (default "
            "127.0.0.1:8080); off: none (`garrison console serve` runs it alone).",
        ),
    ] = None,
    stall_timeout: Annotated[
        str | None,
        typer.Option(
            "--stall-timeout",
            help="How long a defender thread that containers wait on may be silent before "
            "the watchdog ends the stall (default 1s).",
        ),
    ] = None,
) -> None:
    """Run Garrison on this host: the defender and its console store (all-in-one).

    Settings come from defaults, then the --config file, then GARRISON_* environment
    variables, then these options. Stop it with Ctrl-C or SIGTERM.

    It defends the Docker engine named by --docker-host (else GARRISON_DOCKER_HOST, then
    DOCKER_HOST, else unix:///var/run/docker.sock) or, with --runtime containerd or when no
    Docker engine answers, one namespace of containerd. It stops at once when none answers:
    it never installs packages or starts an engine (`garrison engine up` starts a private
    development one).

    With the watchdog (the default) this process supervises the defender, a child process:
    when the defender stops answering permission events for --stall-timeout it is killed (the
    kernel then lets every waiting exec through), the stall is audited, and a new defender
    takes over the containers.
    """
    from garrison.config import load_settings  # noqa: PLC0415

    overrides = {
        "runtime": runtime,
        "containerd_address": containerd_address,
        "containerd_namespace": containerd_namespace,
        "docker_host": docker_host,
        "data_dir": data_dir,
        "learning_period": learning_period,
        "network_interval": network_interval,
        "process_events": process_events,
        "write_prevention": write_prevention,
        "watchdog": watchdog,
        "stall_timeout": stall_timeout,
        "metrics_address": metrics_address,
        "console_address": console_address,
    }
    launch(load_settings(config, overrides))


def launch(settings: Settings) -> None:
    """Run the defender with ``settings``: under its watchdog (this process supervises, the
    defender is a child running this same command) or in this process. With a local console
    its services run here too; with ``remote_console`` they are the console's."""
    import asyncio  # noqa: PLC0415

    from garrison.watchdog import Supervisor, WatchdogState, die_with_supervisor, faults  # noqa: PLC0415

    supervised = WatchdogState.from_env()
    _configure_logging()
    if supervised is not None:  # the defender, started by the watchdog below
        die_with_supervisor(supervised)
        faults.install(supervised.restarts)
        asyncio.run(_serve(settings, supervised))
        return
    settings = resolve_runtime(settings)
    _print_next_steps(settings)
    if not settings.watchdog:
        faults.install()
        asyncio.run(_serve(settings, None))
        return
    # The defender runs this same command again, on the runtime resolved here.
    argv = [sys.executable, *sys.orig_argv[1:]]
    env = {**os.environ, **_runtime_env(settings)}
    with _services(settings):
        code = Supervisor(argv, env, settings.stall_timeout).run()
    out.print("Garrison stopped; models and audits are stored.")
    raise typer.Exit(code)


def _runtime_env(settings: Settings) -> dict[str, str]:
    """The resolved runtime, for the watchdog's defender (options on its command line win)."""
    found = {"GARRISON_RUNTIME": settings.runtime}
    if settings.runtime == "docker" and settings.docker_host:
        return found | {"GARRISON_DOCKER_HOST": settings.docker_host}
    return found | {
        "GARRISON_CONTAINERD_ADDRESS": settings.containerd_address,
        "GARRISON_CONTAINERD_NAMESPACE": settings.containerd_namespace,
    }


async def _serve(settings: Settings, watchdog: WatchdogState | None) -> None:
    import asyncio  # noqa: PLC0415

    from garrison.defender import Defender  # noqa: PLC0415

    console, link = _link(settings)
    runtime = open_runtime(settings)
    defender = Defender(settings, runtime, link, watchdog=watchdog)
    # Under the watchdog, the console's own work runs in the watchdog's process (see run).
    services = _services(settings) if watchdog is None else contextlib.nullcontext()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, defender.request_stop)
    try:
        with services:
            try:
                await defender.serve()
            finally:
                link.close()  # the audits it holds are stored before the services stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        runtime.close()
        if console is not None:
            console.close()
        if watchdog is None:
            out.print("Garrison stopped; models and audits are stored.")


def _link(settings: Settings) -> tuple[Console | None, ConsoleLink]:
    """The console link: to the console in this process (and that console), or to the remote
    console the host enrolled with."""
    if settings.remote_console:
        from garrison.fleet.join import open_link  # noqa: PLC0415

        return None, open_link(settings.data_dir, settings.remote_console)
    from garrison.console import Console  # noqa: PLC0415

    console = Console.open(settings.data_dir)
    return console, console.link(host=settings.hostname)


@contextlib.contextmanager
def _services(settings: Settings) -> Iterator[None]:
    """The console's background work, which only talks to the store: alert dispatch, audits
    into incidents, audit retention, metrics. Kept out of the process that answers the kernel
    when there is a watchdog, so that their CPU (an alert sent through apprise costs
    milliseconds) never holds the interpreter lock a verdict waits for."""
    if settings.remote_console:  # the console's own work, done where it runs
        yield
        return
    from garrison.console import Console  # noqa: PLC0415

    retention = Retention(settings.audit_retention, settings.audit_max_count)
    console = Console.open(settings.data_dir, retention=retention)
    dispatcher = console.dispatcher(settings.hostname).start()  # the alert channels
    correlator = console.correlator().start()  # audits into incidents
    pruner = console.audit_pruner().start()  # audit retention: at start, then hourly
    metrics = _metrics(console, settings.metrics_address)
    served = _console(console, settings)
    try:
        yield
    finally:
        if served is not None:
            served.stop()
        if metrics is not None:
            metrics.shutdown()
            metrics.server_close()
        dispatcher.stop()
        correlator.stop()
        pruner.stop()
        console.close()


def _console(console: Console, settings: Settings) -> ConsoleServer | None:
    """The console beside the defender (unless its address is "off"); an address that cannot
    be served is logged, and the defender runs on (defending matters more)."""
    if settings.console_address.strip().lower() in ("", "off"):
        return None
    from garrison.api.server import ConsoleServer, first_admin  # noqa: PLC0415 - FastAPI's import costs

    try:
        server = ConsoleServer(console, settings.console_address, lambda: open_runtime(settings))
    except ConfigError as exc:
        log.error("%s; no console is served", exc)
        return None
    log.info("console on %s", server.url)
    hint = first_admin(console, settings.data_dir)
    if hint:
        out.print(hint)
    return server.start()


def _metrics(console: Console, address: str) -> WSGIServer | None:
    """The metrics server, when asked for; one that cannot listen is logged, and the
    defender runs on without it (defending matters more than being scraped)."""
    if not address:
        return None
    from garrison.console.metrics import serve_metrics  # noqa: PLC0415 - only when asked for

    try:
        return serve_metrics(console.store, address)
    except ConfigError as exc:
        log.error("%s; no metrics are served", exc)
        return None


def _configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("GARRISON_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _print_next_steps(settings: Settings) -> None:
    if settings.remote_console:
        out.print(
            f"Garrison is defending {_defended(settings)} for the console "
            f"{settings.remote_console} (data in {settings.data_dir})."
        )
        return
    data = settings.data_dir
    flag = "" if data == DEFAULT_DATA_DIR else f" --data-dir {data}"
    me = _command_name()
    out.print(
        f"Garrison is defending {_defended(settings)} (store in {data}; "
        f"models learn for {settings.learning_period:.0f} s).\n"
        f"Next, in another shell: `{me} status{flag}`, `{me} models list{flag}`, "
        f"`{me} audits list{flag}`."
    )


def _defended(settings: Settings) -> str:
    if settings.runtime == "containerd":
        return f"containerd at {settings.containerd_address} ({settings.containerd_namespace})"
    return str(settings.docker_host)


def _command_name() -> str:
    """``garrison`` when that is what the shell finds, else the path this one was run by."""
    if sys.argv[0].endswith("__main__.py"):
        return f"{sys.executable} -m garrison"
    here = os.path.realpath(sys.argv[0])
    found = shutil.which("garrison")
    return "garrison" if found and os.path.realpath(found) == here else sys.argv[0]
