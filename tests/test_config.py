"""Settings merge defaults < file < environment < command line, and bad values say which."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.config import load_settings, parse_duration
from garrison.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("30s", 30.0), ("15m", 900.0), ("1h", 3600.0), ("7d", 604800.0), (2.5, 2.5)],
)
def test_durations_accept_units(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", "1w", "-5", "0", "h", "1 hour", True, "99999999999999999999h", "3651d", float("inf"),
     float("nan")],
)  # fmt: skip
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=3650), st.sampled_from(["", "s", "m", "h", "d"]))
def test_duration_units_multiply(number: int, unit: str) -> None:
    factor = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert parse_duration(f"{number}{unit}") == number * factor


def test_layers_override_in_order(tmp_path: Path) -> None:
    config = tmp_path / "garrison.yaml"
    config.write_text("learning-period: 2h\ndata_dir: /srv/from-file\nnetwork_interval: 5\n")
    env = {"GARRISON_LEARNING_PERIOD": "30m", "DOCKER_HOST": "unix:///tmp/d.sock"}
    settings = load_settings(config, overrides={"network_interval": "3s"}, env=env)
    assert settings.data_dir == Path("/srv/from-file")
    assert settings.learning_period == 1800.0
    assert settings.network_interval == 3.0
    assert settings.docker_host == "unix:///tmp/d.sock"


def test_malformed_config_file_is_one_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("learning_period: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(config, env={})


def test_unknown_or_bad_setting_names_the_setting(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("learning_period: soon\n")
    with pytest.raises(ConfigError, match="learning_period"):
        load_settings(config, env={})
    config.write_text("lerning_period: 5\n")
    with pytest.raises(ConfigError, match="lerning_period"):
        load_settings(config, env={})


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml", env={})


def test_the_process_events_source_is_one_of_three() -> None:
    assert load_settings(env={}).process_events == "auto"
    env = {"GARRISON_PROCESS_EVENTS": "proc_connector"}
    assert load_settings(env=env).process_events == "proc_connector"
    with pytest.raises(ConfigError, match="process_events"):
        load_settings(env={"GARRISON_PROCESS_EVENTS": "ebpf"})


def test_audit_retention_defaults_to_90_days_and_a_million_audits() -> None:
    settings = load_settings(env={})
    assert (settings.audit_retention, settings.audit_max_count) == (90 * 86400.0, 1_000_000)


def test_audit_retention_comes_from_the_file_and_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "garrison.yaml"
    config.write_text("audit-retention: 30d\naudit_max_count: 5000\n")
    settings = load_settings(config, env={})
    assert (settings.audit_retention, settings.audit_max_count) == (30 * 86400.0, 5000)
    env = {"GARRISON_AUDIT_RETENTION": "12h", "GARRISON_AUDIT_MAX_COUNT": "0"}
    settings = load_settings(config, env=env)
    assert (settings.audit_retention, settings.audit_max_count) == (12 * 3600.0, 0)


@pytest.mark.parametrize(
    ("name", "value"),
    [("AUDIT_RETENTION", "0"), ("AUDIT_RETENTION", "forever"), ("AUDIT_MAX_COUNT", "-1"),
     ("AUDIT_MAX_COUNT", "1e3"), ("AUDIT_MAX_COUNT", "99999999999999999999")],
)  # fmt: skip
def test_a_bad_audit_retention_names_its_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name.lower()):
        load_settings(env={f"GARRISON_{name}": value})
