"""procfs and passwd parsers fed bytes captured on this machine, and readers on live processes."""

from __future__ import annotations

import ctypes
import os
import subprocess
from pathlib import Path

import pytest

from garrison.errors import ProcessGone
from garrison.sensors.passwd import UserNames, open_in_root, parse_passwd, read_in_root
from garrison.sensors.procfs import (
    SYS_EXECVE,
    SYS_EXECVEAT,
    ExecRequest,
    NotAsleep,
    ProcessMemory,
    ProcFS,
    Syscall,
    exec_call,
    has_write_intent,
    open_flags,
    parse_container_id,
    parse_stat_ppid,
    parse_status,
    parse_syscall,
)

DATA = Path(__file__).parent / "data"
CONTAINER = "461920c6d49a3a05a22bfb067a632106ff4d229194b69a6dac97aa6e4e08a56f"


def test_syscall_of_a_process_waiting_in_execve_gives_its_arguments():
    call = parse_syscall((DATA / "procfs_syscall_execve").read_bytes())
    assert call is not None
    assert call.nr == SYS_EXECVE
    assert call.args[:3] == (0x564A4DB7B470, 0x564A4DB7B4B0, 0x564A4DB7B4E8)
    assert exec_call(call) == (-100, 0x564A4DB7B470, 0x564A4DB7B4B0, 0)


def test_execveat_arguments_take_dirfd_and_flags():
    call = Syscall(SYS_EXECVEAT, (3, 0x10, 0x20, 0x30, 0x1000, 0))
    assert exec_call(call) == (3, 0x10, 0x20, 0x1000)
    at_fdcwd = Syscall(SYS_EXECVEAT, (0xFFFFFFFFFFFFFF9C, 0x10, 0x20, 0, 0, 0))
    assert exec_call(at_fdcwd) == (-100, 0x10, 0x20, 0)


@pytest.mark.parametrize("raw", [b"running\n", b"-1 0x7ffd 0x7f12\n", b""])
def test_a_task_not_in_a_syscall_has_no_syscall(raw: bytes):
    assert parse_syscall(raw) is None


def test_status_gives_real_uid_tgid_and_ppid():
    status = parse_status((DATA / "procfs_status_nobody").read_bytes())
    assert (status.name, status.tgid, status.ppid, status.uid) == ("sh", 26461, 26438, 65534)


def test_stat_ppid_survives_a_comm_with_spaces_and_parentheses():
    assert parse_stat_ppid((DATA / "procfs_stat").read_bytes()) == 26438
    assert parse_stat_ppid(b"42 (a) b) c) S 7 42 42 0 -1") == 7


def test_cgroup_names_the_docker_container_in_v1_and_v2_lines():
    raw = (DATA / "procfs_cgroup_docker_hybrid").read_bytes()
    assert parse_container_id(raw) == CONTAINER
    v2_only = next(line for line in raw.splitlines() if line.startswith(b"0::"))
    assert parse_container_id(v2_only) == CONTAINER
    systemd = b"0::/system.slice/docker-" + CONTAINER.encode() + b".scope\n"
    assert parse_container_id(systemd) == CONTAINER


def test_host_process_cgroup_has_no_container():
    assert parse_container_id(Path("/proc/self/cgroup").read_bytes()) is None


def test_passwd_of_the_debian_image_names_nobody_and_root():
    names = parse_passwd((DATA / "procfs_passwd_debian").read_bytes())
    assert names[0] == "root"
    assert names[65534] == "nobody"
    assert parse_passwd(b"# comment\nbroken\nx:x:notanumber:0\n") == {}


def test_process_memory_reads_argv_and_strings_of_a_live_process():
    strings = [ctypes.create_string_buffer(s) for s in (b"/bin/nc", b"-l", b"-p", b"4444")]
    argv = (ctypes.c_char_p * 5)(*[ctypes.cast(s, ctypes.c_char_p) for s in strings], None)
    with ProcessMemory(ProcFS(), os.getpid()) as mem:
        assert mem.string(ctypes.addressof(strings[0])) == "/bin/nc"
        assert mem.argv(ctypes.addressof(argv)) == ("/bin/nc", "-l", "-p", "4444")
        assert mem.argv(0) == ()


def test_packed_argv_is_read_in_one_span():
    blob = ctypes.create_string_buffer(b"a\0bb\0" + b"c" * 5000 + b"\0")
    base = ctypes.addressof(blob)
    argv = (ctypes.c_uint64 * 4)(base, base + 2, base + 5, 0)
    with ProcessMemory(ProcFS(), os.getpid()) as mem:
        got = mem.argv(ctypes.addressof(argv))
    assert got[:2] == ("a", "bb")
    assert got[2] == "c" * 4096  # cut at PATH_MAX, as documented


def test_relative_exec_names_join_the_callers_cwd(tmp_path: Path):
    proc = subprocess.Popen(["sleep", "30"], cwd=tmp_path)
    try:
        procfs = ProcFS()
        assert procfs.exec_path(proc.pid, ExecRequest("./x", ())) == f"{tmp_path}/x"
        assert procfs.exec_path(proc.pid, ExecRequest("/a/../b", ())) == "/b"
        assert procfs.ppid(proc.pid) == os.getpid()
        assert procfs.status(proc.pid).uid == os.getuid()
    finally:
        proc.kill()
        proc.wait()


def test_a_process_gone_raises_process_gone():
    proc = subprocess.Popen(["true"])
    proc.wait()
    procfs = ProcFS()
    with pytest.raises(ProcessGone):
        procfs.status(proc.pid)
    with pytest.raises(ProcessGone):
        procfs.exe(proc.pid)
    with pytest.raises(ProcessGone):
        ProcessMemory(procfs, proc.pid)


def test_procfs_root_is_configurable(tmp_path: Path):
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "status").write_bytes((DATA / "procfs_status_nobody").read_bytes())
    assert ProcFS(str(tmp_path)).status(7).uid == 65534


def test_passwd_symlink_cannot_escape_the_container_root(tmp_path: Path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "real").write_bytes(b"app:x:1000:1000::/:/bin/sh\n")
    (tmp_path / "etc" / "passwd").symlink_to("/../../real")
    assert read_in_root(str(tmp_path), "/etc/passwd") == b"app:x:1000:1000::/:/bin/sh\n"
    (tmp_path / "etc" / "passwd").unlink()
    (tmp_path / "etc" / "passwd").symlink_to("/etc/shadow")  # the host's, were it followed
    with pytest.raises(FileNotFoundError):
        os.close(open_in_root(str(tmp_path), "/etc/passwd"))


def test_user_names_reload_when_an_unknown_uid_appears(tmp_path: Path):
    (tmp_path / "etc").mkdir()
    passwd = tmp_path / "etc" / "passwd"
    passwd.write_bytes(b"root:x:0:0::/:/bin/sh\n")
    users = UserNames(str(tmp_path), reload_interval=0.0)
    users.load()
    assert users.name(0) == "root"
    assert users.name(1000) == "1000"
    passwd.write_bytes(b"root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n")
    assert users.name(1000) == "app"


def test_openat_flags_show_write_intent_before_the_open_happens():
    # Captured at FAN_OPEN_PERM: `echo x > /tmp/x` (0x241 = O_WRONLY|O_CREAT|O_TRUNC) and
    # ld.so opening /etc/ld.so.cache (0x80000 = O_RDONLY|O_CLOEXEC).
    write = parse_syscall((DATA / "procfs_syscall_openat_write").read_bytes())
    read = parse_syscall((DATA / "procfs_syscall_openat_read").read_bytes())
    assert write is not None
    assert read is not None
    assert open_flags(write) == 0x241
    assert has_write_intent(0x241)
    assert open_flags(read) == 0x80000
    assert not has_write_intent(0x80000)
    assert open_flags(Syscall(SYS_EXECVE, (0,) * 6)) is None
    assert has_write_intent(os.O_RDWR)
    assert has_write_intent(os.O_RDONLY | os.O_TRUNC)


def _fake_proc(tmp_path: Path, syscall: bytes) -> Path:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "syscall").write_bytes(syscall)
    return tmp_path


def test_a_task_still_running_is_read_again_until_it_waits(tmp_path: Path):
    proc = _fake_proc(tmp_path, b"running\n")
    waiting = b"59 0x5600 0x5700 0x5800 0x0 0x0 0x0 0x7ffc 0x7f00\n"
    reads = 0
    original = ProcFS.read

    class Settling(ProcFS):
        def read(self, pid: int, name: str) -> bytes:  # the task goes to sleep at read 3
            nonlocal reads
            reads += 1
            if reads == 3:
                (proc / "42" / "syscall").write_bytes(waiting)
            return original(self, pid, name)

    call = Settling(str(proc)).waiting_syscall(42)
    assert call == Syscall(SYS_EXECVE, (0x5600, 0x5700, 0x5800, 0, 0, 0))
    assert reads == 3


def test_a_task_that_never_waits_gives_up_after_the_patience(tmp_path: Path):
    proc = _fake_proc(tmp_path, b"running\n")
    with pytest.raises(NotAsleep):
        ProcFS(str(proc)).waiting_syscall(42, patience=0.01)


def test_a_task_in_no_call_is_none_at_once(tmp_path: Path):
    proc = _fake_proc(tmp_path, b"-1 0x7ffc 0x7f00\n")
    assert ProcFS(str(proc)).waiting_syscall(42) is None
