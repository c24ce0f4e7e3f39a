"""``garrison console serve`` for real: a process on a loopback port, plain and with TLS; the
first start makes the admin and says where its password is; a token from ``garrison users``
opens the API, nothing else does."""

from __future__ import annotations

import re
import socket
import ssl
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def garrison(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "garrison", *args], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    started: list[subprocess.Popen[str]] = []

    def start(*extra: str) -> tuple[subprocess.Popen[str], int]:
        port = free_port()
        argv = [sys.executable, "-m", "garrison", "console", "serve", "--address",
                f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "data"), *extra]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started.append(proc)
        wait_for("the console to listen", lambda: _listening(port) or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()[0]
        return proc, port

    try:
        yield start
    finally:
        for proc in started:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def token(data_dir: Path, user: str = "admin") -> str:
    made = garrison(
        "users", "token", "create", user, "--name", "tests", "--data-dir", str(data_dir)
    )
    assert made.returncode == 0, made.stderr
    found = re.search(r"gt_[A-Za-z0-9_-]+", made.stdout)
    assert found, made.stdout
    return found.group(0)


def test_the_first_start_makes_the_admin_and_only_a_token_opens_the_api(
    serve, tmp_path: Path
) -> None:
    proc, port = serve()
    password_file = tmp_path / "data" / "initial-admin-password"
    wait_for("the first admin", password_file.exists)
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert len(password_file.read_text().strip()) >= 16
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/api/v1/status").status_code == 401
    secret = token(tmp_path / "data")
    answer = httpx.get(f"{base}/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == "admin"
    assert httpx.get(f"{base}/api/v1/openapi.json").status_code == 200  # the schema is public
    proc.terminate()
    output = proc.communicate(timeout=10)[0]
    assert str(password_file) in output
    assert password_file.read_text().strip() not in output, "the password is never printed"


def test_with_a_certificate_the_api_is_served_over_tls(serve, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run([*openssl, *subject, *files], check=True, capture_output=True)
    _, port = serve("--tls-cert", str(cert), "--tls-key", str(key))
    secret = token(tmp_path / "data")
    with httpx.Client(verify=ssl.create_default_context(cafile=str(cert))) as client:
        answer = client.get(f"https://127.0.0.1:{port}/api/v1/status",
                            headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/api/v1/status", timeout=5)


def test_a_busy_address_is_one_clear_error(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        done = garrison("console", "serve", "--address", f"127.0.0.1:{port}",
                        "--data-dir", str(tmp_path / "data"))  # fmt: skip
    assert done.returncode != 0
    assert f"console address 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_runtime_is_refused_before_serving(tmp_path: Path) -> None:
    done = garrison("console", "serve", "--address", "127.0.0.1:0", "--runtime", "podman",
                    "--data-dir", str(tmp_path / "data"))  # fmt: skip
    assert done.returncode != 0
    assert "--runtime 'podman': docker, containerd or auto" in done.stderr
    assert "Traceback" not in done.stderr
