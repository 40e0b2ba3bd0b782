"""Files holding a password are mode 0600 from the start, even over a leftover looser temporary file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from common.private_file import discard_private, open_private, write_private


def test_a_leftover_temporary_file_with_a_looser_mode_does_not_loosen_the_written_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    leftover = tmp_path / "agent.toml.tmp"
    leftover.write_text("stale")
    os.chmod(leftover, 0o644)
    write_private(path, 'password = "secret"\n')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text() == 'password = "secret"\n' and not leftover.exists()


def test_a_file_opened_then_discarded_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    discard_private(open_private(path), path)
    assert list(tmp_path.iterdir()) == []
