"""The release number: one place (common/version.py), the same in CHANGELOG.md, the package's
metadata, both programs' ``--version`` and the git tag on a release commit (docs/en/versions.md, "Releases")."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

import pytest
from realservices import REPO

from common.version import PREVIOUS, PREVIOUS_COMMIT, VERSION, parse, served

CHANGELOG = REPO / "CHANGELOG.md"
RELEASE_HEADING = re.compile(
    r"^## ([0-9]+\.[0-9]+\.[0-9]+) - ([0-9]{4}-[0-9]{2}-[0-9]{2})(?: - commit ([0-9a-f]{40}))?$", re.M
)


def releases() -> list[tuple[str, str, str | None]]:
    return [(m.group(1), m.group(2), m.group(3)) for m in RELEASE_HEADING.finditer(CHANGELOG.read_text())]


def test_the_changelogs_newest_release_is_this_version_and_it_names_the_previous_commit() -> None:
    listed = releases()
    assert listed[0][0] == VERSION
    assert (PREVIOUS, PREVIOUS_COMMIT) in {(version, commit) for version, _date, commit in listed}
    assert [parse(v) for v, _d, _c in listed] == sorted((parse(v) for v, _d, _c in listed), reverse=True)


def test_the_installed_package_says_this_version() -> None:
    assert importlib.metadata.version("commune-monitor") == VERSION


def test_a_collector_serves_its_own_minor_release_and_the_one_before() -> None:
    assert served("0.2.0", "0.2.3") and served("0.2.0", "0.1.0") and served("0.3.1", "0.2.0")
    assert not served("0.3.0", "0.1.0") and not served("1.0.0", "0.9.0") and not served("0.2.0", "0.3.0")
    assert served(VERSION, PREVIOUS)
    with pytest.raises(ValueError):
        parse("0.2")


@pytest.mark.services  # runs both programs and git
@pytest.mark.parametrize("program", ["agent", "collector"])
def test_both_programs_say_this_version(program: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"{program}.cli", "--version"], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert done.stdout.strip() == VERSION


@pytest.mark.services  # runs git
def test_release_tags_name_the_recorded_commits() -> None:
    """Where the clone has tags (CI's may not): v<VERSION> on this commit if it is tagged at all,
    and v<PREVIOUS> on the commit recorded for it."""
    tags = subprocess.run(
        ["git", "-C", str(REPO), "tag", "--points-at", "HEAD", "--list", "v*"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(tag == f"v{VERSION}" for tag in tags), tags
    previous = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"refs/tags/v{PREVIOUS}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    assert previous in ("", PREVIOUS_COMMIT)
