"""The policy is the model, plus what a rule allows, minus what it denies: denied lists win."""

from __future__ import annotations

from typing import Any

from garrison.policy import (
    NO_MODEL,
    AttackType,
    ExecFacts,
    RuntimeRule,
    StaticModel,
    evaluate_file,
    evaluate_network,
    evaluate_process,
    verdict_of,
)
from garrison.policy.compiled import compile_rule
from garrison.sensors.events import FileEvent, NetEvent, ProcessEvent, Verdict

MODEL = StaticModel(
    state="active",
    processes=frozenset({"/usr/sbin/nginx", "/bin/sh"}),
    listening=frozenset({("tcp", 80)}),
    outbound_ports=frozenset({("tcp", 443)}),
    outbound_addresses=frozenset({"127.0.0.1"}),
    written=frozenset({"/var/log/nginx", "/tmp"}),
)


def policy(**sections: Any):
    return compile_rule(RuntimeRule(name="r", **sections))


def exec_(path: str, *args: str, user: str = "root") -> ProcessEvent:
    argv = (path, *args)
    return ProcessEvent("c1", 7, 1, path, argv, 0, user, "/usr/sbin/nginx", 0.0, resolved_path=path)


def write(path: str) -> FileEvent:
    return FileEvent("c1", path, "create", 7, "/usr/sbin/nginx", 0.0)


def listen(port: int, protocol: str = "tcp") -> NetEvent:
    return NetEvent("c1", "listen", protocol, "0.0.0.0", port)  # type: ignore[arg-type]


def connect(ip: str, port: int) -> NetEvent:
    return NetEvent("c1", "connect", "tcp", "127.0.0.1", 40000, ip, port, 7, "/usr/bin/curl")


def summary(decisions: list) -> list[tuple[str, str]]:
    return [(d.effect, d.attackType) for d in decisions]


# -- processes --------------------------------------------------------------------------------


def test_a_process_outside_an_active_model_gets_the_section_effect() -> None:
    found = evaluate_process(policy(processes={"effect": "block"}), MODEL, exec_("/usr/bin/id"))
    assert summary(found) == [("block", AttackType.UNEXPECTED_PROCESS)]
    assert found[0].msg == "/usr/bin/id launched but is not found in the runtime model"
    assert found[0].ruleName == "r"


def test_a_learning_model_has_no_anomalies() -> None:
    assert evaluate_process(policy(), NO_MODEL, exec_("/usr/bin/id")) == []


def test_a_known_process_is_quiet_and_an_allowed_one_too() -> None:
    p = policy(processes={"allowed": ["/usr/bin/id"]})
    assert evaluate_process(p, MODEL, exec_("/usr/sbin/nginx")) == []
    assert evaluate_process(p, MODEL, exec_("/usr/bin/id")) == []


def test_an_allowed_tool_is_spared_its_name_based_detection() -> None:
    p = policy(processes={"allowed": ["nc"]})
    assert evaluate_process(p, MODEL, exec_("/bin/nc")) == []


def test_denied_wins_over_allowed_and_over_the_model() -> None:
    p = policy(
        processes={"allowed": ["/usr/sbin/*"], "denied": {"effect": "prevent", "paths": ["nginx"]}}
    )
    found = evaluate_process(p, MODEL, exec_("/usr/sbin/nginx"))
    assert summary(found) == [("prevent", AttackType.DENIED_PROCESS)]
    assert verdict_of(found) is Verdict.DENY


def test_a_denied_path_matches_the_file_really_executed_too() -> None:
    p = policy(processes={"denied": {"effect": "prevent", "paths": ["/bin/busybox"]}})
    applet = ProcessEvent(
        "c1", 7, 1, "/bin/nc", ("nc",), 0, "root", "", 0.0, resolved_path="/bin/busybox"
    )
    assert AttackType.DENIED_PROCESS in {
        d.attackType for d in evaluate_process(p, NO_MODEL, applet)
    }


def test_findings_come_strongest_first_and_alerts_alone_allow() -> None:
    p = policy(processes={"effect": "alert", "detections": {"lateral_movement": "block"}})
    found = evaluate_process(p, MODEL, exec_("/bin/nc", "-z", "127.0.0.1", "1-100"))
    assert summary(found) == [
        ("block", AttackType.LATERAL_MOVEMENT),
        ("alert", AttackType.UNEXPECTED_PROCESS),
    ]
    assert verdict_of(found) is Verdict.DENY
    assert verdict_of(found[1:]) is Verdict.ALLOW


def test_a_reverse_shell_is_found_even_in_an_allowed_shell() -> None:
    p = policy(processes={"allowed": ["/bin/sh"]})
    found = evaluate_process(p, MODEL, exec_("/bin/sh"), ExecFacts(stdio_socket=True))
    assert summary(found) == [("alert", AttackType.REVERSE_SHELL)]


def test_custom_process_rules_read_name_parent_user_and_command() -> None:
    custom = [
        {
            "name": "shell-from-nginx",
            "expression": 'proc.pname = "nginx" and proc.name = "sh"'
            ' and proc.cmdline contains "-c"',
            "effect": "prevent",
            "message": "nginx spawned a shell",
        }
    ]
    p = policy(custom=custom)
    found = evaluate_process(p, MODEL, exec_("/bin/sh", "-c", "id"))
    assert summary(found) == [("prevent", AttackType.CUSTOM_RULE)]
    assert found[0].msg == "nginx spawned a shell (custom rule 'shell-from-nginx')"
    assert evaluate_process(p, MODEL, exec_("/bin/sh")) == []


# -- file system ------------------------------------------------------------------------------


def test_a_write_outside_the_model_and_a_denied_directory() -> None:
    p = policy(filesystem={"denied": {"effect": "prevent", "paths": ["/etc"]}})
    assert summary(evaluate_file(p, MODEL, write("/etc/x"))) == [
        ("prevent", AttackType.DENIED_FILE),
        ("alert", AttackType.UNEXPECTED_FILE_WRITE),
    ]
    assert evaluate_file(p, MODEL, write("/tmp/x")) == []
    assert evaluate_file(p, MODEL, write("/etcetera/x")) != []  # unknown, but not denied
    assert AttackType.DENIED_FILE not in {
        d.attackType for d in evaluate_file(p, MODEL, write("/etcetera/x"))
    }


def test_an_allowed_path_is_spared_anomalies_and_detections_but_not_denial() -> None:
    p = policy(
        filesystem={"allowed": ["/usr/local/bin"], "denied": {"paths": ["/usr/local/bin/evil"]}}
    )
    assert evaluate_file(p, MODEL, write("/usr/local/bin/app")) == []
    assert summary(evaluate_file(p, MODEL, write("/usr/local/bin/evil"))) == [
        ("alert", AttackType.DENIED_FILE)
    ]


def test_custom_file_rules_read_path_and_directory() -> None:
    p = policy(
        custom=[
            {"name": "cron", "expression": 'file.dir startswith "/etc/cron"', "effect": "block"}
        ]
    )
    found = evaluate_file(p, MODEL, write("/etc/cron.d/job"))
    assert ("block", AttackType.CUSTOM_RULE) in summary(found)
    assert found[0].type == "filesystem"


def test_open_permission_marks_are_needed_only_for_prevent() -> None:
    assert not policy().needs_open_perm
    assert not policy(filesystem={"effect": "block"}).needs_open_perm
    assert policy(filesystem={"denied": {"effect": "prevent", "paths": ["/etc"]}}).needs_open_perm
    assert policy(filesystem={"detections": {"ssh_keys": "prevent"}}).needs_open_perm
    assert not policy(filesystem={"detections": {"new_executables": "prevent"}}).needs_open_perm


# -- network ----------------------------------------------------------------------------------


def test_listening_ports_model_allowed_range_and_denied() -> None:
    p = policy(
        network={
            "listening": {"allowed": ["8000-8080"], "denied": {"effect": "block", "ports": [23]}}
        }
    )
    assert evaluate_network(p, MODEL, listen(80)) == []
    assert evaluate_network(p, MODEL, listen(8042)) == []
    assert summary(evaluate_network(p, MODEL, listen(9000))) == [
        ("alert", AttackType.UNEXPECTED_LISTENING_PORT)
    ]
    assert summary(evaluate_network(p, NO_MODEL, listen(23))) == [
        ("block", AttackType.DENIED_LISTENING_PORT)
    ]


def test_port_lists_can_name_a_protocol() -> None:
    p = policy(network={"listening": {"allowed": ["udp/53"]}})
    assert evaluate_network(p, MODEL, listen(53, "udp")) == []
    assert evaluate_network(p, MODEL, listen(53, "tcp")) != []


def test_outbound_ports_and_addresses() -> None:
    p = policy(network={"outbound": {"denied": {"effect": "block", "ports": ["25"]}}})
    assert evaluate_network(p, MODEL, connect("127.0.0.1", 443)) == []
    assert summary(evaluate_network(p, MODEL, connect("127.0.0.1", 8443))) == [
        ("alert", AttackType.UNEXPECTED_OUTBOUND_PORT)
    ]
    assert summary(evaluate_network(p, MODEL, connect("127.0.0.2", 443))) == [
        ("alert", AttackType.UNEXPECTED_OUTBOUND_ADDRESS)
    ]
    assert summary(evaluate_network(p, MODEL, connect("127.0.0.1", 25))) == [
        ("block", AttackType.DENIED_OUTBOUND_PORT)
    ]


def test_ip_lists_take_cidr_v4_and_v6_and_denied_wins() -> None:
    p = policy(
        network={
            "ips": {
                "allowed": ["127.0.0.0/8", "::1"],
                "denied": {"effect": "block", "ips": ["127.0.0.66", "fd00::/8"]},
            }
        }
    )
    assert evaluate_network(p, MODEL, connect("127.9.9.9", 9999)) == []
    assert evaluate_network(p, MODEL, connect("::1", 9999)) == []
    assert summary(evaluate_network(p, MODEL, connect("127.0.0.66", 443))) == [
        ("block", AttackType.DENIED_IP)
    ]
    assert summary(evaluate_network(p, MODEL, connect("fd00::5", 443))) == [
        ("block", AttackType.DENIED_IP)
    ]
    assert summary(evaluate_network(p, MODEL, connect("::ffff:127.0.0.66", 443))) == [
        ("block", AttackType.DENIED_IP)
    ]


def test_custom_network_rules_apply_to_outbound_connections() -> None:
    p = policy(custom=[{"name": "mining-pool", "expression": "net.outgoing_port in (3333, 4444)"}])
    assert summary(evaluate_network(p, NO_MODEL, connect("127.0.0.1", 3333))) == [
        ("alert", AttackType.CUSTOM_RULE)
    ]
    assert evaluate_network(p, NO_MODEL, listen(3333)) == []
