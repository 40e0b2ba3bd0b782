"""Builds a released version of commune-monitor beside this tree: the tests run its agent and its
collector against the current ones (tests/test_mixed_versions.py) and record what its agent sends
(devtools/record_wire.py).

A release is found by its tag ``v<version>`` when the clone has tags, else by the commit
``common.version`` records for it (CI's clone may have history but no tags). Its source is a git
worktree (detached, at that commit) and its programs a venv of its own with the ``agent`` and
``collector`` extras installed from that source, both under ``build/releases/<version>/``: kept
between runs, so a rerun costs nothing once built (pip's cache makes the first build quick too).

Run ``python -m devtools.releases [VERSION]`` to build one and print its Python.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from common.version import PREVIOUS, PREVIOUS_COMMIT

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build" / "releases"
# The commits of released versions this tree knows without tags (CHANGELOG.md names them too).
KNOWN_COMMITS = {PREVIOUS: PREVIOUS_COMMIT}


@dataclass(frozen=True)
class Release:
    """A released version built here: its source tree and the Python of its venv."""

    version: str
    commit: str
    source: Path
    python: Path

    def env(self) -> dict[str, str]:
        """The environment its programs run in: its own installed packages, never this tree's."""
        return {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()[:300]}")
    return done.stdout.strip()


def commit_of(version: str) -> str:
    """The commit of a release: its tag's where the clone has it, else the one recorded here."""
    try:
        return _git("rev-parse", "--verify", "--quiet", f"refs/tags/v{version}^{{commit}}")
    except RuntimeError:
        pass
    commit = KNOWN_COMMITS.get(version)
    if commit is None:
        raise RuntimeError(f"release {version} has no tag v{version} here and no recorded commit")
    _git("cat-file", "-e", f"{commit}^{{commit}}")  # a shallow clone lacks it: say so plainly
    return commit


def build(version: str = PREVIOUS, python: str = sys.executable) -> Release:
    """The release, built under build/releases/<version>/ unless it is there already (same commit)."""
    commit = commit_of(version)
    home = BUILD / version
    source, venv = home / "src", home / "venv"
    stamp = home / "built"
    release = Release(version, commit, source, venv / "bin" / "python")
    if stamp.exists() and stamp.read_text().strip() == commit and release.python.exists():
        return release
    if home.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(source)], capture_output=True)
        shutil.rmtree(home)
    home.mkdir(parents=True)
    _git("worktree", "add", "--detach", str(source), commit)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(release.python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, f"{source}[agent,collector]"], check=True, cwd=home, env=release.env())
    stamp.write_text(commit + "\n")
    return release


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.releases", description=__doc__.split("\n\n")[0])
    parser.add_argument("version", nargs="?", default=PREVIOUS, help=f"the release to build (default {PREVIOUS})")
    args = parser.parse_args(argv)
    try:
        release = build(args.version)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(release.python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
