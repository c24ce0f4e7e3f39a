"""The defaults that ``--help`` shows, as plain values.

Typer needs an option's default when it builds the command line, for every command, before it
knows which one runs. The modules that own these values are too heavy to import for that:
pydantic's settings model, the policy package, FastAPI, the Docker SDK, the vulnerability
database (a second of imports, issue 17). So each value is copied here, next to the name of
its owner, and tests/cli/test_startup_imports.py checks that every copy equals its owner's.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_DATA_DIR = Path("/var/lib/garrison")  # garrison.config
DEFAULT_LIMIT = 100  # garrison.audit.query: audits and incidents listed at most
DEFAULT_CONSOLE_ADDRESS = "127.0.0.1:8080"  # garrison.api.server.DEFAULT_ADDRESS
DEFAULT_PLUGIN_NAME = "garrison"  # garrison.scan.gate.server.DEFAULT_NAME
DEFAULT_PLUGIN_SOCKET = Path("/run/garrison/authz.sock")  # garrison.scan.gate.server.DEFAULT_SOCKET
PLUGIN_DIR = Path("/run/docker/plugins")  # garrison.scan.gate.server
DEFAULT_SCAN_TIMEOUT = 20.0  # garrison.scan.gate.scans
DEFAULT_ENGINE_DIR = Path("/var/tmp/garrison-engine")  # garrison.devengine.engine.DEFAULT_DIR
DEFAULT_OSV_URL = "https://osv-vulnerabilities.storage.googleapis.com"  # scan.vulndb.DEFAULT_URL
DEFAULT_OSV_TIMEOUT = 60.0  # garrison.scan.vulndb.DEFAULT_TIMEOUT
