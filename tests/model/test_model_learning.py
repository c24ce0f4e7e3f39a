"""A model learns while learning, turns active on time, and then names what is new."""

from __future__ import annotations

import pytest

from garrison.errors import ConfigError, InvalidInput
from garrison.model import (
    RULE_NAME,
    FakeClock,
    Identity,
    LearningConfig,
    RuntimeModel,
    State,
    StaticPart,
)
from garrison.runtime.base import ContainerInfo
from garrison.sensors.events import FileEvent, NetEvent, ProcessEvent

HOST = "host1"
NGINX = ContainerInfo(
    id="c0ffee" * 10 + "abcd",
    name="web",
    image_name="garrison-test/nginx:latest",
    image_id="sha256:" + "ab" * 32,
    running=True,
    cmd=("nginx", "-g", "daemon off;"),
)


def exec_(path, *args, t=0.0, user="root", parent="/usr/sbin/nginx", pid=100):
    return ProcessEvent(NGINX.id, pid, 1, path, (path, *args), 0, user, parent, t)


def listen(port, t=0.0, proto="tcp"):
    return NetEvent(NGINX.id, "listen", proto, "0.0.0.0", port, time=t, process_path="/bin/nc")


def connect(ip, port, t=0.0):
    return NetEvent(NGINX.id, "connect", "tcp", "127.0.0.1", 40000, ip, port, 7, "/bin/nc", t)


def write(path, t=0.0):
    return FileEvent(NGINX.id, path, "write", 100, "/usr/sbin/nginx", t)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def model(clock):
    made = RuntimeModel(
        Identity.of(NGINX),
        clock=clock,
        config=LearningConfig(learning_period=60),
        static=StaticPart.of(NGINX),
    )
    made.container_started(NGINX.id)
    return made


def learn_nginx(model, clock):
    model.observe_process(exec_("/usr/sbin/nginx", "-g", "daemon off;", parent=""), NGINX, HOST)
    model.observe_net(listen(80), NGINX, HOST)
    model.observe_net(connect("10.0.0.5", 5432), NGINX, HOST)
    model.observe_file(write("/var/log/nginx/access.log"), NGINX, HOST)
    clock.advance(60)
    assert model.tick()
    assert model.state is State.ACTIVE


def test_learning_records_every_exec_with_count_users_parents_and_times(model, clock):
    for i in range(500):
        model.observe_process(exec_("/bin/true", str(i), t=float(i)), NGINX, HOST)
    model.observe_process(exec_("/bin/true", user="www-data", parent="/bin/sh"), NGINX, HOST)
    entry = model.contents.processes["/bin/true"]
    assert entry.count == 501
    assert entry.command == "/bin/true 0"
    assert (entry.first_seen, entry.last_seen) == (0.0, 499.0)
    assert entry.users == {"root", "www-data"}
    assert entry.parents == {"/usr/sbin/nginx", "/bin/sh"}
    assert model.knows_process("/bin/true")
    assert not model.knows_process("/bin/nc")


def test_learning_time_counts_only_while_a_container_runs(model, clock):
    clock.advance(30)
    model.container_stopped(NGINX.id)
    clock.advance(1000)
    model.tick()
    assert model.state is State.LEARNING
    model.container_started("second")
    clock.advance(29)
    assert model.is_learning()
    clock.advance(1)
    assert not model.is_learning()
    assert model.state is State.ACTIVE


def test_an_active_model_names_an_unknown_process_once_per_event(model, clock):
    learn_nginx(model, clock)
    assert model.observe_process(exec_("/usr/sbin/nginx"), NGINX, HOST) is None
    audit = model.observe_process(exec_("/usr/bin/nc", "-l", "4444", pid=42), NGINX, HOST)
    assert audit is not None
    assert (audit.type, audit.attackType, audit.effect) == (
        "processes",
        "unexpectedProcess",
        "alert",
    )
    assert audit.msg == "/usr/bin/nc launched but is not found in the runtime model"
    assert (audit.processPath, audit.command, audit.pid, audit.user) == (
        "/usr/bin/nc",
        "/usr/bin/nc -l 4444",
        42,
        "root",
    )
    assert (audit.containerId, audit.containerName) == (NGINX.id, "web")
    assert (audit.imageName, audit.imageId) == (NGINX.image_name, NGINX.image_id)
    assert (audit.ruleName, audit.hostname, audit.profileId) == (RULE_NAME, HOST, NGINX.image_id)
    assert not model.knows_process("/usr/bin/nc")


def test_an_active_model_names_new_ports_addresses_and_directories(model, clock):
    learn_nginx(model, clock)
    assert model.observe_net(listen(80), NGINX, HOST) is None
    assert model.observe_net(connect("10.0.0.5", 5432), NGINX, HOST) is None
    assert model.observe_file(write("/var/log/nginx/error.log"), NGINX, HOST) is None

    found = [
        model.observe_net(listen(4444), NGINX, HOST),
        model.observe_net(connect("127.0.0.1", 8080), NGINX, HOST),
        model.observe_net(connect("10.9.9.9", 5432), NGINX, HOST),
        model.observe_file(write("/opt/evil/payload"), NGINX, HOST),
    ]
    assert [(a.type, a.attackType) for a in found if a] == [
        ("network", "unexpectedListeningPort"),
        ("network", "unexpectedOutboundPort"),
        ("network", "unexpectedOutboundAddress"),
        ("filesystem", "unexpectedFileWrite"),
    ]
    assert "port 4444/tcp" in found[0].msg
    assert "127.0.0.1:8080/tcp" in found[1].msg
    assert "/opt/evil" in found[3].msg


def test_a_model_of_many_addresses_checks_only_ports(model, clock):
    for i in range(100):
        model.observe_net(connect(f"10.0.{i}.1", 443), NGINX, HOST)
    clock.advance(60)
    model.tick()
    assert model.contents.any_outbound_address
    assert model.observe_net(connect("192.0.2.1", 443), NGINX, HOST) is None


def test_relearn_forgets_and_learns_again(model, clock):
    learn_nginx(model, clock)
    model.relearn()
    assert model.state is State.LEARNING
    assert not model.knows_process("/usr/sbin/nginx")
    assert model.observe_process(exec_("/usr/bin/nc"), NGINX, HOST) is None
    clock.advance(60)
    assert not model.is_learning()
    assert model.knows_process("/usr/bin/nc")


def test_extend_keeps_what_was_learned_and_learns_more(model, clock):
    learn_nginx(model, clock)
    model.extend(10)
    assert model.is_learning()
    model.observe_process(exec_("/bin/sh"), NGINX, HOST)
    clock.advance(10)
    assert not model.is_learning()
    assert model.knows_process("/bin/sh")
    assert model.knows_process("/usr/sbin/nginx")


def test_extend_needs_a_positive_duration(model):
    with pytest.raises(InvalidInput):
        model.extend(0)


def test_manual_learning_lasts_until_stopped(model, clock):
    learn_nginx(model, clock)
    model.learn_start()
    clock.advance(10**6)
    model.tick()
    assert model.is_learning()
    model.observe_process(exec_("/bin/sh"), NGINX, HOST)
    model.learn_stop()
    assert model.state is State.ACTIVE
    assert model.observe_process(exec_("/bin/sh"), NGINX, HOST) is None
    assert model.observe_process(exec_("/bin/bash"), NGINX, HOST) is not None


def test_a_model_without_containers_is_archived_then_expires(clock):
    config = LearningConfig(learning_period=60, archive_after=100, retention=1000)
    model = RuntimeModel(Identity.of(NGINX), clock=clock, config=config)
    model.container_started(NGINX.id)
    clock.advance(60)
    model.container_stopped(NGINX.id)
    clock.advance(99)
    model.tick()
    assert model.state is State.ACTIVE
    clock.advance(1)
    model.tick()
    assert model.state is State.ARCHIVED
    assert not model.expired()
    clock.advance(1000)
    assert model.expired()


def test_an_archived_model_comes_back_in_the_state_it_had(clock):
    config = LearningConfig(learning_period=60, archive_after=100)
    model = RuntimeModel(Identity.of(NGINX), clock=clock, config=config)
    model.container_started(NGINX.id)
    clock.advance(20)
    model.container_stopped(NGINX.id)
    clock.advance(100)
    model.tick()
    assert model.state is State.ARCHIVED
    model.container_started("again")
    assert model.state is State.LEARNING
    clock.advance(40)
    assert not model.is_learning()


def test_archived_and_learning_models_raise_no_audit(clock):
    model = RuntimeModel(Identity.of(NGINX), clock=clock)
    assert model.observe_process(exec_("/usr/bin/nc"), NGINX, HOST) is None
    model.life.state = State.ARCHIVED
    assert model.observe_process(exec_("/usr/bin/nc2"), NGINX, HOST) is None
    assert not model.knows_process("/usr/bin/nc2")


def test_a_document_round_trip_keeps_contents_and_state(model, clock):
    learn_nginx(model, clock)
    doc = model.to_doc()
    again = RuntimeModel.from_doc(doc, clock=clock, config=model.config)
    assert again.to_doc() | {"runningContainers": []} == doc | {"runningContainers": []}
    assert again.state is State.ACTIVE
    assert again.observe_process(exec_("/usr/bin/nc"), NGINX, HOST) is not None
    assert again.static.cmd == ("nginx", "-g", "daemon off;")


def test_a_broken_document_is_refused_clearly(clock):
    with pytest.raises(InvalidInput, match="model p1"):
        RuntimeModel.from_doc({"profileId": "p1", "v": 1}, clock=clock)
    with pytest.raises(InvalidInput):
        RuntimeModel.from_doc({"v": 99, "profileId": "p2"}, clock=clock)


def test_orchestrated_containers_get_a_model_per_namespace_and_cluster():
    labels = {"io.kubernetes.pod.name": "web-1", "io.kubernetes.pod.namespace": "prod"}
    pod = ContainerInfo("id1", "web", "nginx", "sha256:aa", labels=labels)
    assert Identity.of(pod, cluster="east").profile_id == "sha256:aa_prod_east"
    plain = ContainerInfo("id2", "web", "nginx", "sha256:aa")
    assert Identity.of(plain, cluster="east").profile_id == "sha256:aa"


def test_learning_periods_must_be_positive():
    with pytest.raises(ConfigError, match="learning period"):
        LearningConfig(learning_period=0)
