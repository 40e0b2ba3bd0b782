"""Files that hold a password (agent configs, the broker's plugin file), shared by agent and collector.

Such a file must never be readable by others, not even for a moment: it is written to a temporary
file beside it, created with mode 0600, then renamed over it. A leftover temporary file (from a
crash, or made by someone else with a looser mode) is removed first rather than reused, because
``O_CREAT`` keeps the mode of a file that exists. The temporary file can be opened before the
content is known (``open_private``), so a caller learns that the folder is not writable before it
asks a server for a password it could not keep.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def temporary_of(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def open_private(path: Path) -> int:
    """A new, empty temporary file beside ``path``, mode 0600; OSError when it cannot be made."""
    temporary = temporary_of(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(str(temporary))
    return os.open(str(temporary), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def finish_private(fd: int, path: Path, text: str) -> None:
    """Write ``text`` into the file ``open_private`` gave and put it in place of ``path``."""
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(str(temporary_of(path)), str(path))


def discard_private(fd: int, path: Path) -> None:
    """Close and remove the file ``open_private`` gave, when there is nothing to write after all."""
    os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(str(temporary_of(path)))


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600 from the start (its folder made if need be)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    finish_private(open_private(path), path, text)
