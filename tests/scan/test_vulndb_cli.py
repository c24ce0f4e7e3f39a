"""``garrison vulndb import|update|status`` as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from garrison.cli.vulndb import app
from garrison.scan.vulndb import DownloadError

DATA = Path(__file__).parent / "data"
runner = CliRunner()


def test_import_prints_the_counts_and_the_reasons_for_skips(tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", str(DATA / "osv_debian12"), "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "7 imported, 0 replaced, 0 unchanged, 1 withdrawn (ignored), 2 invalid" in result.output
    assert "skipped osv_invalid_no_modified.json: modified: Field required" in result.output
    assert (tmp_path / "vulndb.sqlite").is_file()


def test_status_json_reads_the_data_dir_from_the_environment(tmp_path: Path) -> None:
    env = {"GARRISON_DATA_DIR": str(tmp_path)}
    runner.invoke(app, ["import", str(DATA / "osv_debian12")], env=env)
    result = runner.invoke(app, ["status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert (status["advisories"], status["ecosystems"]) == (7, {"Debian": 7})
    assert status["path"] == str(tmp_path / "vulndb.sqlite")


def test_status_table_of_an_empty_data_dir_does_not_create_the_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "0 advisories" in result.output
    assert "last update never" in result.output
    assert not (tmp_path / "vulndb.sqlite").exists()


def test_update_failure_raises_the_download_error_main_prints(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9"  # discard port: nothing listens, the connection is refused
    args = ["update", "--url", url, "-e", "Debian", "--data-dir", str(tmp_path)]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, DownloadError)  # garrison.cli.main: one line, exit 1
    assert str(result.exception).startswith(
        "download of http://127.0.0.1:9/Debian/all.zip failed: [Errno 111] Connection refused"
    )
