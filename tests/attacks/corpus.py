"""The attack corpus: behaviours an attacker shows in a container, each with a benign look-alike.

Modelled on Falco's event-generator actions, Atomic Red Team's container techniques and the
evasions of issue 13. Each behaviour is run for real by ``test_attacks.py`` in a container of
one of the test images (see ``IMAGES``), under an alerting rule and, when preventable, under a
preventing one. A behaviour's ``attack`` writes MARKER when its payload really ran: present
under the alerting rule, absent under the preventing one. ``docs/detections.md`` is generated
from this list (``python -m tests.attacks.coverage``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MARKER = "/tmp/atk-ran"
Image = Literal["debian", "busybox"]
IMAGES: dict[Image, str] = {
    "debian": "garrison-test/debian:12",
    "busybox": "garrison-test/busybox:latest",
}
LOADER = "/lib64/ld-linux-x86-64.so.2"
TOUCH = f"touch {MARKER}"
# A payload that lives two seconds before its mark: one seen just after it starts (the loader
# run by hand) is killed before it gets there.
SLOW_TOUCH = f"sleep 2; {TOUCH}"
# Python: run /bin/sh from a memfd, its first act writing the marker.
MEMFD = """
import os
fd = os.memfd_create("payload", 0)
os.write(fd, open("/bin/sh", "rb").read())
os.{how}
"""
MEMFD_PATH = MEMFD.format(how=f'execv(f"/proc/self/fd/{{fd}}", ["sh", "-c", "{TOUCH}"])')
MEMFD_FEXECVE = MEMFD.format(how=f'execve(fd, ["sh", "-c", "{TOUCH}"], {{}})')
# Python: the same from a file deleted while open (on the root file system).
DELETED = f"""
import os
fd = os.open("/tmp/vanish", os.O_RDONLY)
os.unlink("/tmp/vanish")
os.execv(f"/proc/self/fd/{{fd}}", ["sh", "-c", "{TOUCH}"])
"""
# Python: a memfd made and read, never executed.
MEMFD_BENIGN = """
import os
fd = os.memfd_create("cache", 0)
os.write(fd, b"just data")
os.lseek(fd, 0, 0)
assert os.read(fd, 9) == b"just data"
"""
# Python: bash (or dash) driven through a socket, its first act writing the marker.
SOCKET_SHELL = f"""
import socket, subprocess
server = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(server.getsockname())
peer, _ = server.accept()
peer.sendall(b"{TOUCH}; exit\\n")
subprocess.run(["{{shell}}"], stdin=client, stdout=client, timeout=30)
"""
# Python: the "upgrade" of a reverse shell: script(1) runs bash on a pty it relays to the
# socket that is its own stdio (the test image's python has no pty module).
PTY_SHELL = f"""
import socket, subprocess
server = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(server.getsockname())
peer, _ = server.accept()
peer.sendall(b"{TOUCH}; exit\\n")
script = ["/usr/bin/script", "-qc", "/bin/bash", "/dev/null"]
subprocess.run(script, stdin=client, stdout=client, env={{"SHELL": "/bin/bash"}}, timeout=30)
"""
PTY_PIPED = f"""
import subprocess
script = ["/usr/bin/script", "-qc", "/bin/bash", "/dev/null"]
env = {{"SHELL": "/bin/bash"}}
subprocess.run(script, input=b"{TOUCH}.pipe; exit\\n", env=env, timeout=30)
"""
PIPED_SHELL = f"""
import subprocess
subprocess.run(["/bin/bash"], input=b"{TOUCH}.pipe; exit\\n", check=True)
"""
# Python: listen on a port, or connect to one (to a server of its own), for the sensors to see.
LISTEN = f"""
import socket, time
held = socket.create_server(("127.0.0.1", {{port}}))
open("{MARKER}", "w").close()
time.sleep(3)
"""
CONNECT = f"""
import socket, time
server = socket.create_server(("0.0.0.0", {{port}}))
held = socket.create_connection(("{{host}}", {{port}}))
open("{MARKER}", "w").close()
time.sleep(3)
"""


def py(script: str) -> str:
    """A bash line running a python script."""
    return f"python3 -c '{script}'"


def ran_unless_refused(command: str) -> str:
    """``command``, then the marker unless it was refused (126: exec refused; 137: killed)."""
    return f"{command}; s=$?; [ $s -ne 126 ] && [ $s -ne 137 ] && {TOUCH}; true"


@dataclass(frozen=True, slots=True)
class Behaviour:
    name: str  # the containers' suffix: atk-alert-NAME, atk-prevent-NAME
    title: str
    technique: str  # MITRE ATT&CK (Enterprise / Containers)
    attack: str  # shell script: the behaviour; it writes MARKER when its payload ran
    lookalike: str  # shell script: the benign thing that looks like it
    audit_type: str  # the audit's ``type``
    attack_type: str  # its ``attackType``
    about: str  # what its msg (and, for processes, its processPath) names
    preventable: bool
    how: str  # how Garrison detects and refuses it (docs/detections.md)
    image: Image = "debian"
    user: str = ""  # run the attack as this user ("": root)
    process_path: str | None = None  # the audit's processPath, when it names the program
    # Not preventable before it runs, but killed just after it starts under a prevent rule.
    killed_after: bool = False


def _p(  # noqa: PLR0917
    name: str, title: str, technique: str, attack: str, lookalike: str, attack_type: str,
       about: str, how: str, **kw: object) -> Behaviour:  # fmt: skip
    """A process behaviour: audited with the program as processPath, preventable."""
    kw.setdefault("process_path", about)
    kw.setdefault("preventable", True)
    return Behaviour(name, title, technique, attack, lookalike, "processes", attack_type,
                     about, how=how, **kw)  # type: ignore[arg-type]  # fmt: skip


def _f(  # noqa: PLR0917
    name: str, title: str, technique: str, attack: str, lookalike: str, attack_type: str,
       about: str, how: str, preventable: bool = True) -> Behaviour:  # fmt: skip
    """A file system behaviour: audited with the file in its msg."""
    return Behaviour(name, title, technique, attack, lookalike, "filesystem", attack_type,
                     about, preventable, how)  # fmt: skip


def _n(  # noqa: PLR0917
    name: str, title: str, technique: str, attack: str, lookalike: str, attack_type: str,
       about: str, how: str) -> Behaviour:  # fmt: skip
    """A network behaviour: audited (never refused: sockets are seen after the fact)."""
    return Behaviour(name, title, technique, attack, lookalike, "network", attack_type, about,
                     False, how)  # fmt: skip


FANOTIFY = "fanotify exec permission event, refused before the exec"
BPF_KILL = "BPF exec tracepoint, killed in the kernel before its first instruction"
LOADER_HOW = (
    "BPF exec tracepoint (the loader run by hand is the program), judged as the file it loads. "
    "Once the model is active under a rule refusing unknown programs, killed at the loader's "
    "exec unless the file is a learned one (tests/defender/test_loader_kill.py); under a "
    "prevent detection alone, killed just after it starts"
)
APPLET_HOW = "the applet argv names, judged at the exec (fanotify)"
WRITE_HOW = "read-only mount or fanotify open permission event, refused at open"
NEW_EXE_HOW = "fanotify write notification, ELF magic read after the write"
NET_HOW = "BPF socket-state tracepoint (or /proc/net polling)"
MOUNT_HOW = "fanotify exec permission event on the container's mount (a mount mark), refused"
MANAGED_HOW = "fanotify mount mark on the file Docker bind-mounts, or a read-only remount"

BEHAVIOURS: tuple[Behaviour, ...] = (
    # -- fileless and loader execs ---------------------------------------------------------
    _p(
        "memfd",
        "Run a program from a memfd through /proc/self/fd",
        "T1620 Reflective Code Loading",
        py(MEMFD_PATH),
        py(MEMFD_BENIGN),
        "filelessExecution",
        "/memfd:payload",
        BPF_KILL,
    ),
    _p(
        "fexecve",
        "Run a memfd with execveat(AT_EMPTY_PATH) (fexecve)",
        "T1620 Reflective Code Loading",
        py(MEMFD_FEXECVE),
        py(MEMFD_BENIGN),
        "filelessExecution",
        "/memfd:payload",
        BPF_KILL,
    ),
    _p(
        "deleted",
        "Run a binary deleted while open",
        "T1070.004 File Deletion",
        "cp /bin/sh /tmp/vanish && " + py(DELETED),
        "cp /bin/sh /tmp/vanish && rm /tmp/vanish",
        "filelessExecution",
        "/tmp/vanish",
        f"{FANOTIFY} (no link left: fileless)",
    ),
    _p(
        "loader-drift",
        "Run a copied binary through the dynamic loader",
        "T1218 System Binary Proxy Execution",
        f"cp /bin/sh /tmp/payload && {LOADER} /tmp/payload -c '{SLOW_TOUCH}'",
        f"{LOADER} /usr/bin/true",
        "driftBinary",
        "/tmp/payload",
        LOADER_HOW,
        preventable=False,
        killed_after=True,
    ),
    _p(
        "loader-options",
        "Run a copied binary through the loader, with options before it",
        "T1218 System Binary Proxy Execution",
        f"cp /bin/sh /tmp/payload && {LOADER} --library-path /lib --argv0 x /tmp/payload"
        f" -c '{SLOW_TOUCH}'",
        f"{LOADER} --library-path /lib /usr/bin/true",
        "driftBinary",
        "/tmp/payload",
        LOADER_HOW,
        preventable=False,
        killed_after=True,
    ),
    _p(
        "loader-link",
        "Run the loader through a link of another name",
        "T1036 Masquerading",
        f"cp /bin/sh /tmp/payload && ln -s {LOADER} /tmp/ldr && /tmp/ldr /tmp/payload"
        f" -c '{SLOW_TOUCH}'",
        f"ln -s {LOADER} /tmp/ldr2 && /tmp/ldr2 /usr/bin/true",
        "driftBinary",
        "/tmp/payload",
        LOADER_HOW,
        preventable=False,
        killed_after=True,
    ),
    _p(
        "loader-nc",
        "Run nc through the dynamic loader",
        "T1046 Network Service Discovery",
        ran_unless_refused(f"timeout 2 {LOADER} /usr/bin/nc -l 127.0.0.1 7001"),
        f"{LOADER} /usr/bin/true",
        "lateralMovement",
        "/usr/bin/nc",
        LOADER_HOW,
        preventable=False,
        killed_after=True,
    ),
    # -- identity tricks -------------------------------------------------------------------
    _p(
        "applet-argv0",
        "Run busybox's nc through a learned name (exec -a nc /bin/ls)",
        "T1036.005 Masquerading: Match Legitimate Name or Location",
        ran_unless_refused("(exec -a nc /bin/ls -h 2>/dev/null)"),
        "/bin/ls -a /",
        "lateralMovement",
        "/bin/nc",
        APPLET_HOW,
        image="busybox",
    ),
    _p(
        "applet-busybox",
        "Run nc as an argument of busybox (busybox nc)",
        "T1036 Masquerading",
        ran_unless_refused("/bin/busybox nc -h 2>/dev/null"),
        "/bin/busybox ls /",
        "lateralMovement",
        "/bin/nc",
        APPLET_HOW,
        image="busybox",
    ),
    _p(
        "renamed-nc",
        "Run a copy of nc under another name",
        "T1036.003 Rename System Utilities",
        ran_unless_refused("cp /usr/bin/nc.openbsd /tmp/netutil && /tmp/netutil -h 2>/dev/null"),
        "cp /usr/bin/nc.openbsd /tmp/netutil",
        "driftBinary",
        "/tmp/netutil",
        FANOTIFY,
    ),
    _p(
        "socat-name",
        "Run a tool named socat",
        "T1095 Non-Application Layer Protocol",
        ran_unless_refused("cp /usr/bin/true /tmp/socat && /tmp/socat"),
        "cp /usr/bin/true /tmp/socatx",
        "lateralMovement",
        "/tmp/socat",
        FANOTIFY,
    ),
    # -- known tools -----------------------------------------------------------------------
    _p(
        "miner-name",
        "Run a program named xmrig",
        "T1496 Resource Hijacking",
        ran_unless_refused("cp /usr/bin/true /tmp/xmrig && /tmp/xmrig --donate-level 1"),
        "cp /usr/bin/true /tmp/minerva && /tmp/minerva",
        "cryptoMiner",
        "/tmp/xmrig",
        FANOTIFY,
    ),
    _p(
        "miner-stratum",
        "Pass a Stratum pool URL to a program",
        "T1496 Resource Hijacking",
        # the URL is put together by the shell: in bash's own argv it would be found there
        ran_unless_refused("u=stratum; /usr/bin/true -o $u+tcp://pool.example:3333"),
        "/usr/bin/true -o tcp://pool.example:3333",
        "cryptoMiner",
        "/usr/bin/true",
        FANOTIFY,
    ),
    _p(
        "miner-stratum-ssl",
        "Pass a Stratum-over-TLS pool URL",
        "T1496 Resource Hijacking",
        ran_unless_refused("u=stratum; /usr/bin/true --url=$u+ssl://pool.example:443"),
        "/usr/bin/true --url=https://pool.example:443",
        "cryptoMiner",
        "/usr/bin/true",
        FANOTIFY,
    ),
    _p(
        "nc",
        "Run nc",
        "T1046 Network Service Discovery",
        ran_unless_refused("/usr/bin/nc -h 2>/dev/null"),
        "cp /usr/bin/true /tmp/ncdu && /tmp/ncdu",
        "lateralMovement",
        "/usr/bin/nc",
        FANOTIFY,
    ),
    _p(
        "nc-busybox",
        "Run busybox's nc applet by its path",
        "T1046 Network Service Discovery",
        ran_unless_refused("/bin/nc -h 2>/dev/null"),
        "/bin/ls /",
        "lateralMovement",
        "/bin/nc",
        FANOTIFY,
        image="busybox",
    ),
    _p(
        "nmap-name",
        "Run a tool named nmap",
        "T1046 Network Service Discovery",
        ran_unless_refused("cp /usr/bin/true /tmp/nmap && /tmp/nmap -sS 127.0.0.1"),
        "cp /usr/bin/true /tmp/nmapper && /tmp/nmapper",
        "lateralMovement",
        "/tmp/nmap",
        FANOTIFY,
    ),
    _p(
        "minerd-name",
        "Run a program named minerd",
        "T1496 Resource Hijacking",
        ran_unless_refused("cp /usr/bin/true /tmp/minerd && /tmp/minerd -a cryptonight"),
        "cp /usr/bin/true /tmp/minder && /tmp/minder",
        "cryptoMiner",
        "/tmp/minerd",
        FANOTIFY,
    ),
    _p(
        "telnet-busybox",
        "Run busybox's telnet applet",
        "T1021 Remote Services",
        ran_unless_refused("/bin/telnet 2>/dev/null"),
        "/bin/wget --help 2>/dev/null; true",
        "lateralMovement",
        "/bin/telnet",
        FANOTIFY,
        image="busybox",
    ),
    _p(
        "setgid",
        "Run a setgid binary as another user",
        "T1548.001 Setuid and Setgid",
        ran_unless_refused("/usr/bin/expiry --help >/dev/null 2>&1"),
        "/usr/bin/groups",
        "suidBinary",
        "/usr/bin/expiry",
        FANOTIFY,
        user="65534",
    ),
    # -- shells ----------------------------------------------------------------------------
    _p(
        "reverse-bash",
        "Drive bash through a socket",
        "T1059.004 Unix Shell",
        py(SOCKET_SHELL.format(shell="/bin/bash")),
        py(PIPED_SHELL),
        "reverseShell",
        "/bin/bash",
        f"{FANOTIFY}; its stdin/stdout read while it waits",
    ),
    _p(
        "reverse-dash",
        "Drive dash (/bin/sh) through a socket",
        "T1059.004 Unix Shell",
        py(SOCKET_SHELL.format(shell="/bin/sh")),
        py(PIPED_SHELL),
        "reverseShell",
        "/bin/sh",
        f"{FANOTIFY}; its stdin/stdout read while it waits",
    ),
    _p(
        "reverse-pty",
        "Upgrade a reverse shell to a pty (script /dev/null)",
        "T1059.004 Unix Shell",
        py(PTY_SHELL),
        py(PTY_PIPED),
        "reverseShell",
        "/bin/bash",
        f"{FANOTIFY}; the pty's master is held with a TCP socket by its parent",
    ),
    # -- privilege and drift ---------------------------------------------------------------
    _p(
        "setuid",
        "Run a setuid binary as another user",
        "T1548.001 Setuid and Setgid",
        ran_unless_refused("/usr/bin/gpasswd --help >/dev/null 2>&1"),
        "/usr/bin/id",
        "suidBinary",
        "/usr/bin/gpasswd",
        FANOTIFY,
        user="65534",
    ),
    _p(
        "drift",
        "Run a binary written after the container started",
        "T1105 Ingress Tool Transfer",
        ran_unless_refused("cp /usr/bin/true /tmp/dropped && /tmp/dropped"),
        "/usr/bin/true",
        "driftBinary",
        "/tmp/dropped",
        FANOTIFY,
    ),
    _p(
        "denied-perl",
        "Run an interpreter the rule denies",
        "T1059 Command and Scripting Interpreter",
        ran_unless_refused("/usr/bin/perl -e 1"),
        "/usr/bin/base64 --version >/dev/null",
        "explicitlyDeniedProcess",
        "/usr/bin/perl",
        "the rule's denied processes; " + FANOTIFY,
    ),
    _p(
        "custom-decode",
        "Decode a payload with base64 -d",
        "T1140 Deobfuscate/Decode",
        ran_unless_refused("echo dHJ1ZQo= | /usr/bin/base64 -d >/dev/null"),
        "echo true | /usr/bin/base64 >/dev/null",
        "customRule",
        "decode",
        "a custom rule; " + FANOTIFY,
        process_path="/usr/bin/base64",
    ),
    # -- off the root file system ---------------------------------------------------------
    _p(
        "tmpfs-nc",
        "Run a copy of nc from a tmpfs",
        "T1046 Network Service Discovery",
        ran_unless_refused("cp /usr/bin/nc.openbsd /scratch/nc && /scratch/nc -h 2>/dev/null"),
        "cp /usr/bin/true /scratch/t && /scratch/t",
        "lateralMovement",
        "/scratch/nc",
        MOUNT_HOW,
    ),
    _p(
        "volume-miner",
        "Run a miner from a volume",
        "T1496 Resource Hijacking",
        ran_unless_refused("cp /usr/bin/true /data/xmrig && /data/xmrig"),
        "cp /usr/bin/true /data/tool && /data/tool",
        "cryptoMiner",
        "/data/xmrig",
        MOUNT_HOW,
    ),
    # -- files -----------------------------------------------------------------------------
    _f(
        "new-executable",
        "Write an ELF file",
        "T1105 Ingress Tool Transfer",
        f"cp /usr/bin/true /tmp/payload && {TOUCH}",
        "cp /etc/os-release /tmp/payload.txt",
        "executableCreation",
        "/tmp/payload",
        NEW_EXE_HOW,
        preventable=False,
    ),
    _f(
        "bin-dir",
        "Write a file in /usr/local/bin",
        "T1554 Compromise Host Software Binary",
        f"echo 'echo hi' > /usr/local/bin/x && {TOUCH}",
        "echo hi > /usr/share/x",
        "binaryDirWrite",
        "/usr/local/bin/x",
        WRITE_HOW,
    ),
    _f(
        "lib-dir",
        "Drop a library under /usr/lib",
        "T1574.006 Dynamic Linker Hijacking",
        f"cp /usr/bin/true /usr/lib/x86_64-linux-gnu/libevil.so && {TOUCH}",
        "cp /usr/bin/true /opt/libfine.so",
        "binaryDirWrite",
        "/usr/lib/x86_64-linux-gnu/libevil.so",
        WRITE_HOW,
    ),
    _f(
        "ssh-keys",
        "Add an SSH authorized key",
        "T1098.004 SSH Authorized Keys",
        "mkdir -p /root/.ssh && echo 'ssh-ed25519 AAAA x' >> /root/.ssh/authorized_keys"
        f" && {TOUCH}",
        "echo key > /tmp/authorized_keys",
        "sshAccess",
        "/root/.ssh/authorized_keys",
        WRITE_HOW,
    ),
    _f(
        "ssh-keys2",
        "Add a key to authorized_keys2",
        "T1098.004 SSH Authorized Keys",
        f"mkdir -p /root/.ssh && echo 'ssh-rsa AAAA x' >> /root/.ssh/authorized_keys2 && {TOUCH}",
        "mkdir -p /root/.ssh && echo x > /root/.ssh/known_hosts",
        "sshAccess",
        "/root/.ssh/authorized_keys2",
        WRITE_HOW,
    ),
    _f(
        "passwd",
        "Add an account to /etc/passwd",
        "T1136.001 Create Account: Local Account",
        f"echo 'x:x:0:0::/root:/bin/sh' >> /etc/passwd && {TOUCH}",
        "cp /etc/passwd /tmp/passwd",
        "administrativeAccounts",
        "/etc/passwd",
        WRITE_HOW,
    ),
    _f(
        "shadow",
        "Rewrite /etc/shadow",
        "T1098 Account Manipulation",
        f"echo 'x::19000:0:99999:7:::' >> /etc/shadow && {TOUCH}",
        "cat /etc/shadow >/dev/null",
        "administrativeAccounts",
        "/etc/shadow",
        WRITE_HOW,
    ),
    _f(
        "group",
        "Add a user to a group in /etc/group",
        "T1098 Account Manipulation",
        f"echo 'wheel:x:10:x' >> /etc/group && {TOUCH}",
        "cat /etc/group >/dev/null",
        "administrativeAccounts",
        "/etc/group",
        WRITE_HOW,
    ),
    _f(
        "sudoers",
        "Write a sudoers drop-in",
        "T1548.003 Sudo and Sudo Caching",
        f"mkdir -p /etc/sudoers.d && echo 'x ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/x && {TOUCH}",
        "mkdir -p /etc/sudo-notes && echo x > /etc/sudo-notes/x",
        "administrativeAccounts",
        "/etc/sudoers.d/x",
        WRITE_HOW,
    ),
    _f(
        "cron",
        "Write a cron job (a path the rule denies)",
        "T1053.003 Scheduled Task: Cron",
        f"mkdir -p /etc/cron.d && echo '* * * * * root id' > /etc/cron.d/x && {TOUCH}",
        "mkdir -p /etc/crontab-notes && echo x > /etc/crontab-notes/x",
        "explicitlyDeniedFile",
        "/etc/cron.d/x",
        "the rule's denied paths; " + WRITE_HOW,
    ),
    _f(
        "profile",
        "Write a login script in /etc/profile.d (a path the rule denies)",
        "T1546.004 Unix Shell Configuration Modification",
        f"mkdir -p /etc/profile.d && echo 'id' > /etc/profile.d/x.sh && {TOUCH}",
        "echo x > /tmp/profile.sh",
        "explicitlyDeniedFile",
        "/etc/profile.d/x.sh",
        "the rule's denied paths; " + WRITE_HOW,
    ),
    _f(
        "preload",
        "Write /etc/ld.so.preload (a path the rule denies)",
        "T1574.006 Dynamic Linker Hijacking",
        f"echo /tmp/x.so > /etc/ld.so.preload && {TOUCH}",
        "cat /etc/ld.so.conf >/dev/null",
        "explicitlyDeniedFile",
        "/etc/ld.so.preload",
        "the rule's denied paths; " + WRITE_HOW,
    ),
    _f(
        "ssh-keys-user",
        "Add an SSH key to a user's home",
        "T1098.004 SSH Authorized Keys",
        "mkdir -p /home/app/.ssh && echo 'ssh-ed25519 AAAA x' >> /home/app/.ssh/authorized_keys"
        f" && {TOUCH}",
        "mkdir -p /home/app/.sshx && echo x > /home/app/.sshx/authorized_keys",
        "sshAccess",
        "/home/app/.ssh/authorized_keys",
        WRITE_HOW,
    ),
    _f(
        "hardlink-passwd",
        "Write /etc/passwd through a hard link made to it",
        "T1136.001 Create Account: Local Account",
        f"ln /etc/passwd /tmp/p && echo 'x:x:0:0::/root:/bin/sh' >> /tmp/p && {TOUCH}",
        "cp /etc/passwd /tmp/p2 && echo x >> /tmp/p2",
        "administrativeAccounts",
        "/etc/passwd",
        "the write's file compared by inode with the names the rule protects; " + WRITE_HOW,
    ),
    _f(
        "hosts",
        "Rewrite /etc/hosts (a path the rule denies; a file Docker mounts)",
        "T1565.001 Stored Data Manipulation",
        f"echo '127.0.0.1 bank.example' >> /etc/hosts && {TOUCH}",
        "cat /etc/hosts >/dev/null",
        "explicitlyDeniedFile",
        "/etc/hosts",
        "the rule's denied paths; " + MANAGED_HOW,
    ),
    _f(
        "resolv",
        "Point /etc/resolv.conf at another server (a file Docker mounts)",
        "T1565.001 Stored Data Manipulation",
        f"echo 'nameserver 127.0.0.53' > /etc/resolv.conf && {TOUCH}",
        "cat /etc/resolv.conf >/dev/null",
        "explicitlyDeniedFile",
        "/etc/resolv.conf",
        "the rule's denied paths; " + MANAGED_HOW,
    ),
    # -- network ---------------------------------------------------------------------------
    _n(
        "bind-shell-port",
        "Listen on a port the rule denies (a bind shell's 4444)",
        "T1571 Non-Standard Port",
        py(LISTEN.format(port=4444)),
        py(LISTEN.format(port=8080)),
        "explicitlyDeniedListeningPort",
        "4444",
        NET_HOW,
    ),
    _n(
        "outbound-port",
        "Connect to a port the rule denies",
        "T1571 Non-Standard Port",
        py(CONNECT.format(host="127.0.0.1", port=5555)),
        py(CONNECT.format(host="127.0.0.1", port=6666)),
        "explicitlyDeniedOutboundPort",
        "5555",
        NET_HOW,
    ),
    _n(
        "outbound-ip",
        "Connect to an address the rule denies",
        "T1071 Application Layer Protocol",
        py(CONNECT.format(host="127.0.0.2", port=7777)),
        py(CONNECT.format(host="127.0.0.1", port=7778)),
        "explicitlyDeniedIP",
        "127.0.0.2",
        NET_HOW,
    ),
)

# The rules the corpus runs under: everything alerts, or everything that can refuses.
DETECTIONS = ("crypto_miners", "lateral_movement", "reverse_shell", "suid_binaries", "drift",
              "fileless")  # fmt: skip
FILE_DETECTIONS = ("binary_dirs", "ssh_keys", "admin_accounts")


def rules(ready_rule: str) -> str:
    """The corpus's rules: ``atk-prevent-*`` containers under prevent, the rest under alert."""

    def rule(name: str, scope: str, effect: str) -> str:
        detections = ", ".join(f"{d}: {effect}" for d in DETECTIONS)
        files = ", ".join(f"{d}: {effect}" for d in FILE_DETECTIONS)
        return f"""
  - name: {name}
    scope: [{{containers: ["{scope}"]}}]
    processes:
      denied: {{effect: {effect}, paths: ["/usr/bin/perl*"]}}
      detections: {{{detections}}}
    filesystem:
      denied:
        effect: {effect}
        paths: ["/etc/cron.d", "/etc/profile.d", "/etc/ld.so.preload", "/etc/hosts",
                "/etc/resolv.conf"]
      detections: {{new_executables: alert, {files}}}
    network:
      listening: {{denied: {{effect: alert, ports: ["4444"]}}}}
      outbound: {{denied: {{effect: alert, ports: ["5555"]}}}}
      ips: {{denied: {{effect: alert, ips: ["127.0.0.2/32"]}}}}
    custom:
      - name: decode
        expression: proc.name = "base64" and proc.cmdline contains "-d"
        message: decode
        effect: {effect}{ready_rule}"""

    return (
        "rules:"
        + rule("attacks prevented", "atk-prevent-*", "prevent")
        + rule("attacks", "atk-*", "alert")
    )
