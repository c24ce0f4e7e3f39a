"""A file written through another of its names: found among the names a policy protects."""

from __future__ import annotations

import os
from pathlib import Path

from garrison.sensors.links import other_name


def test_a_hard_link_leads_to_the_protected_name_of_the_same_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "home" / "app" / ".ssh").mkdir(parents=True)
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    keys = tmp_path / "home" / "app" / ".ssh" / "authorized_keys"
    keys.write_text("ssh-ed25519 AAAA\n")
    (tmp_path / "tmp").mkdir()
    os.link(tmp_path / "etc" / "passwd", tmp_path / "tmp" / "p")
    os.link(keys, tmp_path / "tmp" / "k")
    (tmp_path / "tmp" / "copy").write_text("root:x:0:0::/root:/bin/sh\n")
    root, names = str(tmp_path), ("/etc/shadow", "/etc/passwd", "/home/*/.ssh/authorized_keys")

    def name_of(path: str) -> str | None:
        return other_name(root, os.stat(root + path), names, path)

    assert name_of("/tmp/p") == "/etc/passwd"
    assert name_of("/tmp/k") == "/home/app/.ssh/authorized_keys"
    assert name_of("/etc/passwd") is None  # its own name is not another
    assert name_of("/tmp/copy") is None  # a copy is another file (and has one link)
