"""The release this code is, and the compatibility rule between agent and collector releases.

Why a module and not the git tag alone: CI's clone may carry no tags, and the single-file agent
(PyInstaller) has no git at all, yet both must report the right version. So the version is
written here, and ``tests/test_version.py`` checks it against ``CHANGELOG.md`` (its newest release)
and against the tag on the commit when there is one: a release is tagged ``v<VERSION>`` on the
commit that sets it (docs/en/versions.md, "Releases"). pyproject.toml reads it from here too.
"""

from __future__ import annotations

import re

VERSION = "0.2.0"
# The release before this one, and the commit it was cut from (``CHANGELOG.md`` says the same; the
# tag ``v<PREVIOUS>`` names that commit where tags were fetched).
PREVIOUS = "0.1.0"
PREVIOUS_COMMIT = "ef316610ed5e76f418b60c289efa2b0b8e46ff76"
# A collector serves agents of its own minor release and of this many minor releases before it.
MINOR_RELEASES_SERVED = 1
_RELEASE = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)(?![0-9])")


def parse(version: str) -> tuple[int, int, int]:
    """``"0.2.0"`` -> ``(0, 2, 0)``; raises ValueError unless it starts with three whole numbers
    (a pre-release or local part such as ``0.3.0.dev2`` or ``0.2.0+g1234`` counts as its release)."""
    found = _RELEASE.match(version)
    if found is None:
        raise ValueError(f"version {version[:40]!r} is not MAJOR.MINOR.PATCH")
    return int(found.group(1)), int(found.group(2)), int(found.group(3))


def served(collector: str, agent: str) -> bool:
    """Whether a collector of release ``collector`` promises to take an agent of release ``agent``:
    the same major release and a minor release from ``MINOR_RELEASES_SERVED`` before it up to its own.
    A newer agent is taken too as far as it goes (unknown fields are ignored and counted), but not
    promised."""
    c_major, c_minor, _ = parse(collector)
    a_major, a_minor, _ = parse(agent)
    return a_major == c_major and c_minor - MINOR_RELEASES_SERVED <= a_minor <= c_minor
