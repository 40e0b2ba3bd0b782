"""``commune-collector registry import-equipment``: the example file lands in the state file's
``equipment`` table; a bad file imports nothing, lists every bad row and exits 2; importing a
commune again replaces its items."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.services  # runs the collector's CLI

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "equipment.example.csv"


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "collector.toml"
    config.write_text(f'[state]\npath = "{tmp_path / "state.sqlite"}"\n', encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "collector.cli", "registry", *args, "-c", str(config)],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip


def stored(tmp_path: Path) -> list[tuple[str, ...]]:
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        return db.execute("SELECT commune, kind, serial, holder, issued_on FROM equipment ORDER BY id").fetchall()


def test_the_example_equipment_file_imports_into_the_state_file(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "import-equipment", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"6 items of equipment imported from {EXAMPLE}"
    rows = stored(tmp_path)
    assert len(rows) == 6
    assert rows[0] == ("02473", "token", "A3F10E2D77", "Chủ tịch UBND xã", "2025-08-01")
    again = run_cli(tmp_path, "import-equipment", str(EXAMPLE))
    assert again.returncode == 0 and len(stored(tmp_path)) == 6  # a commune's items are replaced, not doubled


def test_a_bad_equipment_file_imports_nothing_and_exits_2_naming_every_bad_row(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "import-equipment", str(EXAMPLE)).returncode == 0
    bad = tmp_path / "equipment.csv"
    bad.write_text(
        "commune,kind,model,serial,holder,issued_on\n"
        "02473,token,ePass2003,NEW1,Chủ tịch,2025-09-01\n"
        "02473,mouse,X,,Một cửa,2025-09-01\n"
        "abc,token,ePass2003,NEW2,Chủ tịch,2025-13-01\n",
        encoding="utf-8",
    )
    done = run_cli(tmp_path, "import-equipment", str(bad))
    assert done.returncode == 2 and done.stdout == ""
    assert "nothing imported" in done.stderr
    assert "line 3: kind 'mouse' must be one of scanner, token, printer, other" in done.stderr
    assert "line 4: commune 'abc' is not an official commune code" in done.stderr
    assert "line 4: issued_on '2025-13-01' must be a date like 2025-07-01" in done.stderr
    assert len(stored(tmp_path)) == 6 and all(row[2] != "NEW1" for row in stored(tmp_path))


def test_a_missing_equipment_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "import-equipment", str(tmp_path / "nope.csv"))
    assert done.returncode == 2 and "cannot read the file" in done.stderr and "Traceback" not in done.stderr
