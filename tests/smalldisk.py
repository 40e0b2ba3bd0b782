"""A small real filesystem for the full-disk tests: a tmpfs mounted by the test (it runs as root).

``fill`` takes every free block with a filler file, ``free`` deletes it, ``read_only`` remounts it.
Unmounted in the fixture's teardown, lazily so that a process still holding a file cannot keep it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

FILL_CHUNK = 4096


class SmallDisk:
    def __init__(self, path: Path, size_kb: int) -> None:
        self.path = path
        self.size_kb = size_kb
        self._fillers = 0

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        run("mount", "-t", "tmpfs", "-o", f"size={self.size_kb}k,mode=0755", "tmpfs", str(self.path))

    def unmount(self) -> None:
        run("umount", "-l", str(self.path))

    def fill(self) -> int:
        """Write a filler file until the filesystem is full; returns the bytes it took."""
        self._fillers += 1
        filler = self.path / f"filler-{self._fillers}"
        written = 0
        with open(filler, "wb", buffering=0) as out:
            while True:
                try:
                    written += out.write(b"\0" * FILL_CHUNK)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
            for size in (1024, 256, 64, 16, 1):  # the last partial block too
                with contextlib.suppress(OSError):
                    while True:
                        written += out.write(b"\0" * size)
        return written

    def free(self) -> None:
        """Delete every filler file: the space returns."""
        for filler in self.path.glob("filler-*"):
            filler.unlink()

    def free_bytes(self) -> int:
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def read_only(self, on: bool = True) -> None:
        run("mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.path))


def run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")


@contextlib.contextmanager
def small_disk(path: Path, size_kb: int = 300) -> Iterator[SmallDisk]:
    disk = SmallDisk(path, size_kb)
    disk.mount()
    try:
        yield disk
    finally:
        disk.unmount()
