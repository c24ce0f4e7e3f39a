"""Which file policies read-only mounts can enforce alone (``FilesystemPolicy.readonly_paths``)."""

from __future__ import annotations

import pytest

from garrison.policy.compiled import compile_rule
from garrison.policy.detections import BINARY_DIRS
from garrison.policy.loading import load_rules


def readonly(filesystem: str) -> frozenset[str] | None:
    text = f"rules:\n  - name: r\n    filesystem:\n{filesystem}"
    (rule,) = load_rules(text).rules
    return compile_rule(rule).filesystem.readonly_paths


def test_plain_denied_paths_with_prevent_are_the_read_only_paths() -> None:
    got = readonly("      denied: {effect: prevent, paths: [/etc, /srv/data/]}\n")
    assert got == frozenset({"/etc", "/srv/data"})


def test_denied_paths_that_only_alert_or_block_need_no_mount() -> None:
    assert readonly("      denied: {effect: alert, paths: [/etc]}\n") == frozenset()
    assert readonly("      denied: {effect: block, paths: [/etc]}\n") == frozenset()


@pytest.mark.parametrize("pattern", ["/etc/*.conf", "authorized_keys", "/srv/**/x", "id_rsa*"])
def test_a_glob_or_a_bare_name_needs_the_open_permission_guard(pattern: str) -> None:
    assert readonly(f"      denied: {{effect: prevent, paths: [/etc, '{pattern}']}}\n") is None


def test_anomalies_ssh_keys_account_files_and_custom_rules_need_the_guard() -> None:
    assert readonly("      effect: prevent\n") is None
    assert readonly("      detections: {ssh_keys: prevent}\n") is None
    assert readonly("      detections: {admin_accounts: prevent}\n") is None


def test_binary_dirs_prevent_mounts_them_unless_an_allowed_path_is_inside() -> None:
    assert readonly("      detections: {binary_dirs: prevent}\n") == BINARY_DIRS
    allowed_elsewhere = "      allowed: [/opt/app]\n      detections: {binary_dirs: prevent}\n"
    assert readonly(allowed_elsewhere) == BINARY_DIRS
    inside = "      allowed: [/usr/local/bin/tool]\n      detections: {binary_dirs: prevent}\n"
    assert readonly(inside) is None
    glob = "      allowed: ['*.pyc']\n      detections: {binary_dirs: prevent}\n"
    assert readonly(glob) is None
