"""The oldest glibc the single-file agent runs on, read from the binary rather than guessed.

Why: a PyInstaller binary carries its own Python and libraries but not glibc; it runs on a Linux
whose glibc is at least the highest ``GLIBC_x.y`` symbol version that the bootloader or any bundled
library asks for (``objdump -T``). That figure says which old distributions it reaches, so the
docs/en/agent.md's figure is measured by this tool and checked by tests/test_agent_binary.py.

Run it with the build venv's Python, which has PyInstaller to read the bundle::

    build/agent-binary/venv/bin/python -m devtools.glibc_floor dist/commune-agent

It prints one line per file that needs anything newer than glibc 2.17 and a last line
``floor GLIBC_x.y <file>``; ``--json`` prints ``{"floor": "2.34", "by": ..., "files": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Tuple

Version = Tuple[int, int]  # Tuple, not tuple: this module runs on the build venv's Python, which may be 3.8
_GLIBC = re.compile(r"\bGLIBC_(\d+)\.(\d+)(?:\.\d+)?\b")
_ELF_MAGIC = b"\x7fELF"
_REPORT_ABOVE: Version = (2, 17)  # the manylinux2014 baseline: older needs are not worth a line


class FloorError(RuntimeError):
    """The binary cannot be read: not a PyInstaller bundle, or objdump is missing."""


def glibc_versions(objdump_text: str) -> set[Version]:
    """Every GLIBC_x.y symbol version in ``objdump -T`` output (GLIBC_PRIVATE has no number)."""
    return {(int(major), int(minor)) for major, minor in _GLIBC.findall(objdump_text)}


def highest_needed(path: Path) -> Version | None:
    """The newest glibc symbol version an ELF file needs; None when it needs no versioned glibc symbol."""
    try:
        done = subprocess.run(["objdump", "-T", str(path)], capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise FloorError("objdump is not installed (Debian package binutils)") from exc
    if done.returncode != 0:
        raise FloorError(f"objdump -T {path} failed: {done.stderr.strip()[:200]}")
    versions = glibc_versions(done.stdout)
    return max(versions) if versions else None


def unpack_libraries(binary: Path, into: Path) -> dict[str, Path]:
    """Writes every shared library bundled in a PyInstaller single-file binary into ``into``."""
    from PyInstaller.archive.readers import CArchiveReader  # the build venv's PyInstaller reads its own format

    try:
        archive = CArchiveReader(str(binary))
    except Exception as exc:  # PyInstaller raises a plain Exception for a file that is no bundle
        raise FloorError(f"{binary} is not a PyInstaller single-file binary: {exc}") from exc
    libraries: dict[str, Path] = {}
    for index, (name, entry) in enumerate(sorted(archive.toc.items())):
        data = archive.extract(name) if entry[-1] == "b" else b""
        if data.startswith(_ELF_MAGIC):
            path = into / f"{index}-{Path(name).name}"
            path.write_bytes(data)
            libraries[name] = path
    return libraries


def floor(binary: Path) -> tuple[Version, str, dict[str, Version]]:
    """(the glibc the binary needs, the file that needs it, every file's need) for a built binary."""
    with tempfile.TemporaryDirectory(prefix="glibc-floor-") as folder:
        files = {"(bootloader)": binary, **unpack_libraries(binary, Path(folder))}
        needs = {name: version for name, path in files.items() if (version := highest_needed(path))}
    if not needs:
        raise FloorError(f"{binary}: no file in it names a GLIBC symbol version")
    by = max(needs, key=lambda name: needs[name])
    return needs[by], by, needs


def _text(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glibc_floor", description="Oldest glibc a PyInstaller binary runs on.")
    parser.add_argument("binary", type=Path, help="the single-file binary, e.g. dist/commune-agent")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    if not args.binary.is_file():
        print(f"glibc_floor: {args.binary} is not a file; build it with `make agent-binary`", file=sys.stderr)
        return 2
    try:
        needed, by, needs = floor(args.binary)
    except (FloorError, ImportError) as exc:
        print(f"glibc_floor: {exc}", file=sys.stderr)
        return 2
    if args.json:
        files = {name: _text(version) for name, version in sorted(needs.items())}
        print(json.dumps({"floor": _text(needed), "by": by, "files": files}))
        return 0
    for name, version in sorted(needs.items(), key=lambda item: (item[1], item[0])):
        if version > _REPORT_ABOVE:
            print(f"GLIBC_{_text(version)}  {name}")
    print(f"floor GLIBC_{_text(needed)} {by}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
