"""What is not an attack: another name of a learned file, Python's byte-code cache, an exec
whose arguments could not be read — and the look-alikes that still are."""

from __future__ import annotations

from typing import Any

from garrison.model import FakeClock, Identity, LearningConfig, RuntimeModel
from garrison.policy import AttackType, FileFacts, RuntimeRule, evaluate_file, evaluate_process
from garrison.policy.compiled import compile_rule
from garrison.policy.detections import is_bytecode_cache
from garrison.runtime.base import ContainerInfo
from garrison.sensors.events import FileEvent, ProcessEvent

BOX = ContainerInfo(id="c1" * 32, name="box", image_name="debian:12", image_id="sha256:" + "1" * 64)
PYC = "/usr/lib/python3.11/__pycache__/json.cpython-311.pyc"


def policy(**sections: Any):
    return compile_rule(RuntimeRule(name="r", **sections))


def exec_(path: str, resolved: str, *, argv: tuple[str, ...] | None = None, parent: str = "",
          unread: bool = False) -> ProcessEvent:  # fmt: skip
    args = (path,) if argv is None else argv
    return ProcessEvent(
        BOX.id, 7, 1, path, args, 0, "root", parent, 0.0,
        resolved_path=resolved, args_unread=unread,
    )  # fmt: skip


def learned(*events: ProcessEvent) -> RuntimeModel:
    clock = FakeClock()
    model = RuntimeModel(Identity.of(BOX), clock=clock, config=LearningConfig(learning_period=60))
    model.container_started(BOX.id)
    for event in events:
        model.observe_process(event, BOX, "h")
    model.learn_stop()
    return model


def kinds(found: list) -> list[str]:
    return [d.attackType for d in found]


def test_another_name_of_a_learned_file_is_the_learned_program() -> None:
    model = learned(exec_("/usr/bin/dash", "/usr/bin/dash", parent="/usr/bin/python3.11"))
    p = policy(processes={"effect": "prevent", "detections": {"parent_child": "prevent"}})
    assert evaluate_process(p, model, exec_("/bin/sh", "/usr/bin/dash")) == []
    # its learned parents hold under the other name too
    child = exec_("/bin/sh", "/usr/bin/dash", parent="/usr/bin/python3.11")
    assert evaluate_process(p, model, child) == []
    assert model.observe_process(exec_("/bin/sh", "/usr/bin/dash"), BOX, "h") is None


def test_a_different_file_under_a_learned_looking_name_is_still_unexpected() -> None:
    model = learned(exec_("/usr/bin/dash", "/usr/bin/dash"))
    p = policy(processes={"effect": "prevent"})
    found = evaluate_process(p, model, exec_("/bin/bash", "/usr/bin/bash"))
    assert kinds(found) == [AttackType.UNEXPECTED_PROCESS]
    assert model.observe_process(exec_("/bin/bash", "/usr/bin/bash"), BOX, "h") is not None


def test_a_busybox_applet_is_known_by_its_name_not_by_the_shared_file() -> None:
    model = learned(exec_("/bin/ls", "/bin/busybox"))
    p = policy(processes={"effect": "prevent"})
    assert evaluate_process(p, model, exec_("/bin/ls", "/bin/busybox")) == []
    assert kinds(evaluate_process(p, model, exec_("/bin/id", "/bin/busybox"))) == [
        AttackType.UNEXPECTED_PROCESS
    ]


def test_an_exec_whose_arguments_were_unreadable_is_judged_on_the_file_it_ran() -> None:
    model = learned(exec_("/bin/ls", "/bin/busybox"))
    p = policy(processes={"effect": "prevent"})
    unread = exec_("/bin/busybox", "/bin/busybox", argv=(), unread=True)
    assert evaluate_process(p, model, unread) == []
    assert model.observe_process(unread, BOX, "h") is None
    # a file never learned is still unexpected, arguments or not
    other = exec_("/tmp/x", "/tmp/x", argv=(), unread=True)
    assert kinds(evaluate_process(p, model, other)) == [AttackType.UNEXPECTED_PROCESS]


def test_an_unread_exec_while_learning_teaches_no_applet_name() -> None:
    model = learned(exec_("/bin/busybox", "/bin/busybox", argv=(), unread=True))
    assert not model.knows_process("/bin/busybox")


def test_the_learned_files_survive_the_model_document() -> None:
    model = learned(exec_("/usr/bin/dash", "/usr/bin/dash"))
    again = RuntimeModel.from_doc(model.to_doc())
    assert again.knows_process("/bin/sh", "/usr/bin/dash")
    assert not again.knows_process("/bin/sh", "/usr/bin/bash")


def test_bytecode_cache_is_a_python_pyc_in_pycache_only() -> None:
    assert is_bytecode_cache(PYC, "/usr/bin/python3.11")
    assert is_bytecode_cache(PYC + ".140234567", "/usr/bin/python3")  # importlib's temp name
    assert not is_bytecode_cache(PYC, "/usr/bin/dash")
    assert not is_bytecode_cache("/usr/bin/evil.pyc", "/usr/bin/python3")
    assert not is_bytecode_cache("/usr/lib/__pycache__/x.so", "/usr/bin/python3")
    assert not is_bytecode_cache("/usr/lib/__pycache__/a/b.pyc", "/usr/bin/python3")
    assert not is_bytecode_cache(PYC, "/usr/bin/pythonx")


def test_python_writing_its_cache_is_no_binary_dir_write_but_others_are() -> None:
    p = policy(filesystem={"detections": {"binary_dirs": "prevent", "new_executables": "alert"}})

    def found(path: str, writer: str, elf: bool = False) -> list[str]:
        event = FileEvent(BOX.id, path, "create", 7, writer, 0.0)
        return kinds(evaluate_file(p, learned(), event, FileFacts(is_elf=elf)))

    assert AttackType.BINARY_DIR_WRITE not in found(PYC, "/usr/bin/python3.11")
    assert AttackType.BINARY_DIR_WRITE in found(PYC, "/usr/bin/cp")
    assert AttackType.BINARY_DIR_WRITE in found("/usr/bin/x.pyc", "/usr/bin/python3.11")
    # an ELF is no byte code, whatever it is called
    elf = found(PYC, "/usr/bin/python3.11", elf=True)
    assert AttackType.BINARY_DIR_WRITE in elf
    assert AttackType.EXECUTABLE_CREATION in elf
