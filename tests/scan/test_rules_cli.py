"""``garrison policies … list|apply`` and ``garrison authz status`` on a real store folder."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from garrison.cli import authz, policies

runner = CliRunner()


def test_apply_then_list_shows_the_stored_rules(tmp_path: Path) -> None:
    policy = tmp_path / "c.yaml"
    policy.write_text("rules:\n  - name: hardening\n    checks: {'5.4': block}\n")
    applied = runner.invoke(
        policies.app, ["compliance", "apply", "-f", str(policy), "--data-dir", str(tmp_path)]
    )
    assert applied.exit_code == 0, applied.output
    assert "compliance policy applied: 1 rules" in applied.output
    listed = runner.invoke(
        policies.app, ["compliance", "list", "--json", "--data-dir", str(tmp_path)]
    )
    assert '"GCIS-5.4": "block"' in listed.output


def test_list_without_a_stored_policy_shows_the_default(tmp_path: Path) -> None:
    listed = runner.invoke(policies.app, ["vulnerability", "list", "--data-dir", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert "(default: none stored)" in listed.output
    as_json = runner.invoke(
        policies.app, ["vulnerability", "list", "--json", "--data-dir", str(tmp_path)]
    )
    assert '"name": "Default - alert on critical and high"' in as_json.output


def test_malformed_policy_file_is_refused(tmp_path: Path) -> None:
    policy = tmp_path / "v.yaml"
    policy.write_text("rules: [{name: a, effect: deny}]\n")
    result = runner.invoke(
        policies.app, ["vulnerability", "apply", "-f", str(policy), "--data-dir", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "vulnerability policy refused: rules.0.effect" in str(result.exception)


def test_authz_status_fails_when_no_plugin_is_registered(tmp_path: Path) -> None:
    result = runner.invoke(
        authz.app,
        ["status", "--name", "absent", "--link-dir", str(tmp_path), "--spec-dir", str(tmp_path)],
    )
    assert result.exit_code == 1
    assert "plugin absent: not registered" in result.output
