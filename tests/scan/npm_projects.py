"""npm projects as npm itself lays them out, made offline with the machine's own npm: one with
``node_modules`` (a scoped package, a nested older copy, a development dependency, a workspace
linked from ``node_modules``), and the same project's lockfile, in each lockfile version,
without ``node_modules``.

``node_modules`` is written by hand as npm installs it (the registry is not asked); npm then
writes the lockfile from it (``npm install --package-lock-only --offline``) and answers what
it holds (``npm query``), which is the ground truth the inventory is compared with.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

MANIFEST = {
    "name": "app",
    "version": "1.0.0",
    "workspaces": ["packages/*"],
    "dependencies": {"left-pad": "^1.3.0", "debugx": "^4.3.4", "@acme/util": "2.0.0"},
    "devDependencies": {"devtool": "0.1.0"},
}
INSTALLED = {  # folder under the project → package.json
    "node_modules/left-pad": {"name": "left-pad", "version": "1.3.0"},
    "node_modules/debugx": {
        "name": "debugx",
        "version": "4.3.4",
        "dependencies": {"left-pad": "1.1.0"},
    },
    "node_modules/debugx/node_modules/left-pad": {"name": "left-pad", "version": "1.1.0"},
    "node_modules/@acme/util": {"name": "@acme/util", "version": "2.0.0", "license": "MIT"},
    "node_modules/devtool": {"name": "devtool", "version": "0.1.0"},
    "packages/ws": {"name": "ws", "version": "0.5.0", "dependencies": {"left-pad": "^1.0.0"}},
    # Inside a package, not one: a module-type marker.
    "node_modules/debugx/lib": {"type": "module"},
}
LINKS = {"node_modules/ws": "../packages/ws"}  # how npm links a workspace


def npm(*args: str, cwd: Path, cache: Path) -> str:
    """Run the machine's npm offline in ``cwd``, with the cache folder given; its output."""
    env = {**os.environ, "npm_config_cache": str(cache), "npm_config_update_notifier": "false"}
    done = subprocess.run(
        ["npm", *args, "--offline", "--no-audit", "--no-fund"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"npm {' '.join(args)}: {done.stderr}"
    return done.stdout


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")


def make_installed(project: Path, cache: Path, lockfile_version: int = 3) -> Path:
    """The project with node_modules, and the lockfile npm writes for it."""
    write_json(project / "package.json", MANIFEST)
    for folder, manifest in INSTALLED.items():
        write_json(project / folder / "package.json", manifest)
    for link, target in LINKS.items():
        (project / link).symlink_to(target)
    lock(project, cache, lockfile_version)
    return project


def lock(project: Path, cache: Path, lockfile_version: int) -> None:
    args = ("install", "--package-lock-only", f"--lockfile-version={lockfile_version}")
    npm(*args, cwd=project, cache=cache)


def make_lock_only(installed: Path, project: Path, cache: Path, lockfile_version: int) -> Path:
    """The project of ``installed`` with a lockfile of the given version and no node_modules
    (the workspace's folder stays: it is the project's own source)."""
    work = project.parent / f".{project.name}-work"
    shutil.copytree(installed, work, symlinks=True)
    (work / "package-lock.json").unlink()
    lock(work, cache, lockfile_version)
    shutil.rmtree(work / "node_modules")
    work.rename(project)
    return project


def npm_query(project: Path, cache: Path, lock_only: bool) -> list[tuple[str, str, str]]:
    """(location, name, version) of every package npm says the project holds — what is
    installed, or what its lockfile would install without development dependencies — less
    the project itself."""
    args = ["query", "--package-lock-only", "*:not(.dev)"] if lock_only else ["query", "*"]
    cache.mkdir(parents=True, exist_ok=True)
    nodes = json.loads(npm(*args, f"--prefix={project}", cwd=cache, cache=cache))
    found = [(n["location"], n["name"], n["version"]) for n in nodes if n["location"]]
    return sorted(found)
