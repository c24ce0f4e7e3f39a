"""The console: what the CLI calls reaches a running defender's models through the store."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from garrison.audit.query import AuditFilter
from garrison.console import Console, sync_models
from garrison.errors import InvalidInput, NotFound
from garrison.model import FakeClock, LearningConfig, ModelBook, State
from garrison.runtime.base import ContainerInfo
from garrison.sensors.events import ProcessEvent

BUSYBOX = ContainerInfo(
    "b" * 64, "box", "garrison-test/busybox:latest", "sha256:" + "12" * 32, running=True
)
NGINX = ContainerInfo(
    "n" * 64, "web", "garrison-test/nginx:latest", "sha256:" + "34" * 32, running=True
)


def exec_(container, path):
    return ProcessEvent(container.id, 9, 1, path, (path, "-x"), 0, "root", "/bin/sh", 1.0)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def console(tmp_path, clock):
    made = Console.open(tmp_path / "data", clock=clock)
    yield made
    made.close()


@pytest.fixture
def defender(console, clock):
    """The defender's side: a book of models and a link, as `garrison run` will hold them."""
    book = ModelBook(clock=clock, config=LearningConfig(learning_period=10))
    link = console.link(flush_interval=60)
    book.container_started(BUSYBOX)
    book.container_started(NGINX)
    yield book, link
    link.close()


def sync(book, link):
    sync_models(book, link)
    assert link.flush(timeout=30)


def test_models_list_and_show_what_the_defender_saved(console, defender):
    book, link = defender
    book.for_container(NGINX.id).observe_process(exec_(NGINX, "/usr/sbin/nginx"), NGINX, "h")
    sync(book, link)
    listed = {m["imageName"]: m for m in console.list_models()}
    assert listed["garrison-test/nginx:latest"]["processes"] == 1
    assert listed["garrison-test/nginx:latest"]["state"] == "learning"
    shown = console.show_model("garrison-test/nginx")
    assert shown["processes"][0]["path"] == "/usr/sbin/nginx"
    assert console.show_model("3434343434")["profileId"] == NGINX.image_id
    assert console.show_model(NGINX.image_id)["imageName"] == NGINX.image_name


def test_unknown_and_ambiguous_names_are_clear_errors(console, defender):
    book, link = defender
    labels = {"io.kubernetes.pod.name": "web-0", "io.kubernetes.pod.namespace": "prod"}
    pod = dataclasses.replace(NGINX, id="p" * 64, labels=labels)
    book.container_started(pod)
    sync(book, link)
    with pytest.raises(NotFound, match="no model for 'redis'"):
        console.show_model("redis")
    with pytest.raises(InvalidInput, match="names 2 models"):
        console.show_model("garrison-test/nginx")
    assert console.show_model(f"{NGINX.image_id}_prod_")["namespace"] == "prod"
    assert len(console.relearn("garrison-test/nginx")) == 2
    with pytest.raises(InvalidInput, match="name a model"):
        console.relearn(" ")


def test_relearn_from_the_console_reaches_the_defender(console, defender, clock):
    book, link = defender
    model = book.for_container(NGINX.id)
    model.observe_process(exec_(NGINX, "/usr/sbin/nginx"), NGINX, "h")
    clock.advance(10)
    sync(book, link)
    assert model.state is State.ACTIVE

    queued = console.relearn("garrison-test/nginx:latest")
    assert [(c.op, c.profile_id) for c in queued] == [("relearn", NGINX.image_id)]
    assert console.status()["pendingModelCommands"] == 1
    sync(book, link)
    assert model.state is State.LEARNING
    assert not model.knows_process("/usr/sbin/nginx")
    assert console.show_model("garrison-test/nginx")["state"] == "learning"
    assert console.status()["pendingModelCommands"] == 0


def test_extend_and_manual_learning_from_the_console(console, defender, clock):
    book, link = defender
    model = book.for_container(BUSYBOX.id)
    clock.advance(10)
    sync(book, link)
    console.extend("garrison-test/busybox", 30)
    sync(book, link)
    assert model.is_learning()
    console.learn_start(BUSYBOX.image_id)
    sync(book, link)
    clock.advance(10**6)
    assert model.is_learning()
    console.learn_stop(BUSYBOX.image_id)
    sync(book, link)
    assert model.state is State.ACTIVE
    assert console.status()["models"] == {"active": 2}


def test_a_command_from_another_process_reaches_the_running_defender(tmp_path, defender):
    book, link = defender
    sync(book, link)
    code = (
        "import sys\n"
        "from garrison.console import Console\n"
        "with Console.open(sys.argv[1]) as console:\n"
        "    console.learn_start('garrison-test/busybox')\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "data")], check=True, timeout=60)
    sync(book, link)
    model = book.for_container(BUSYBOX.id)
    assert model.life.learning_target is None


def test_audits_reported_by_the_defender_are_listed_by_the_console(console, defender, clock):
    book, link = defender
    model = book.for_container(NGINX.id)
    clock.advance(10)
    sync(book, link)
    for _ in range(3):
        audit = model.observe_process(exec_(NGINX, "/usr/bin/nc"), NGINX, "h")
        link.report_audit(audit)
    assert link.flush(timeout=30)
    audits = console.list_audits(AuditFilter(image="garrison-test/nginx", type="processes"))
    assert [(a.processPath, a.count, a.containerName) for a in audits] == [
        ("/usr/bin/nc", 3, "web")
    ]
    assert audits[0].to_json()["attackType"] == "unexpectedProcess"


def test_status_shows_the_defenders_last_report(console, defender):
    book, link = defender
    link.report_status({"sensors": {"fanotify": {"events": 10, "drops": 0}}})
    sync(book, link)
    status = console.status()
    assert status["defender"] == {"sensors": {"fanotify": {"events": 10, "drops": 0}}}
    assert status["models"] == {"learning": 2}
    assert status["blockedContainers"] == 0


def test_policies_are_kept_by_kind(console):
    console.set_policy("runtime", {"rules": [{"name": "deny nc"}]})
    assert console.get_policy("runtime") == {"rules": [{"name": "deny nc"}]}
    assert console.get_policy("vulnerability") is None
    with pytest.raises(InvalidInput):
        console.get_policy("")
