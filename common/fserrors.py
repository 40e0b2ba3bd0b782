"""Why a file could not be written, as one short stable name shared by agent and collector.

A full disk, a read-only filesystem, a failing disk and a corrupt SQLite file call for different
actions by the person who reads the report or ``/healthz``, but Python raises them as a handful of
``sqlite3`` and ``OSError`` types whose messages vary. ``error_class`` turns them into one of
``ERROR_CLASSES``; the agent reports it in ``agent.spool_error``, the collector in ``/healthz``.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import Final

LOW_SPACE_BYTES: Final = 64 * 1024  # below this much free space an unclear SQLite error is a full disk

DISK_FULL: Final = "disk_full"
READ_ONLY: Final = "read_only"
IO_ERROR: Final = "io_error"
CORRUPT: Final = "corrupt"
CANNOT_OPEN: Final = "cannot_open"
OTHER: Final = "other"
ERROR_CLASSES: Final = (DISK_FULL, READ_ONLY, IO_ERROR, CORRUPT, CANNOT_OPEN, OTHER)

_SQLITE_CLASSES = {13: DISK_FULL, 8: READ_ONLY, 10: IO_ERROR, 11: CORRUPT, 26: CORRUPT, 14: CANNOT_OPEN}
_ERRNO_CLASSES = {errno.ENOSPC: DISK_FULL, errno.EDQUOT: DISK_FULL, errno.EROFS: READ_ONLY, errno.EIO: IO_ERROR}


def error_class(exc: BaseException, directory: Path | None = None) -> str:
    """One of ``ERROR_CLASSES`` for ``exc``; ``directory`` (where the file is) settles unclear SQLite errors."""
    if isinstance(exc, sqlite3.Error):
        code = int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        found = _SQLITE_CLASSES.get(code)
        if found is None and not isinstance(exc, sqlite3.OperationalError):
            found = CORRUPT  # a DatabaseError without a code: "file is not a database", "malformed"
        if found in (None, IO_ERROR, CANNOT_OPEN) and directory is not None:
            # SQLite reports a file it could not create, or a failed -shm growth, without saying why
            if read_only(directory):
                return READ_ONLY
            if free_bytes(directory) < LOW_SPACE_BYTES:
                return DISK_FULL
        return found or OTHER
    if isinstance(exc, OSError):
        return _ERRNO_CLASSES.get(exc.errno or 0, IO_ERROR)
    return OTHER


def free_bytes(directory: Path) -> int:
    """Free bytes for an unprivileged writer on the filesystem of ``directory`` (0 when unknown)."""
    if sys.platform == "win32":  # no statvfs there
        try:
            return shutil.disk_usage(directory).free
        except OSError:
            return 0
    try:
        stat = os.statvfs(directory)
    except OSError:
        return 0
    return stat.f_bavail * stat.f_frsize


def read_only(directory: Path) -> bool:
    """Whether the filesystem of ``directory`` is mounted read-only (never known on Windows)."""
    if sys.platform == "win32":
        return False
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def move_aside(path: Path) -> Path:
    """Rename a corrupt SQLite file (and its WAL) to ``<name>.corrupt-<UTC time>``; returns the new
    path. Its shared-memory index is deleted. Raises OSError when it cannot be renamed."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    serial = 1
    while target.exists():
        serial += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{serial}")
    if path.exists():
        path.rename(target)
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        wal.rename(target.with_name(target.name + "-wal"))
    path.with_name(path.name + "-shm").unlink(missing_ok=True)
    return target


def prune_corrupt(path: Path, keep: int, keep_bytes: int) -> int:
    """Delete the oldest moved-aside copies of ``path`` beyond ``keep`` files or ``keep_bytes``."""
    # names carry the UTC time they were moved aside, so the newest sort last (mtime is the old file's)
    copies = sorted(path.parent.glob(f"{path.name}.corrupt-*"), key=lambda p: p.name, reverse=True)
    removed = 0
    total = 0
    for index, copy in enumerate(copies):
        size = _size(copy)
        if index < keep and total + size <= keep_bytes:
            total += size
            continue
        try:
            copy.unlink()
            removed += 1
        except OSError:
            continue
    return removed


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
