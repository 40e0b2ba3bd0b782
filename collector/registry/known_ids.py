"""USB ids an area team adds for devices its agents could not place (kind ``other``).

``commune-collector registry import-known-ids FILE`` reads a CSV with the columns of the agent's own
``known_ids.csv`` (``vendor_id,product_id,kind,model``; a ``source`` column may follow and is not
kept) and stores it in the state file (table ``known_ids``, declared by ``collector/store.py``).
The file is the whole list: an import replaces what the last one stored. Every row is checked
first; a bad file stores nothing and fails with one line naming the first bad row and how many
are bad. The collector hands the rows to each agent on its hello (``collector/ingest/known_ids.py``).
"""

from __future__ import annotations

import csv
from pathlib import Path

from collector.store import Store
from common.wire import MAX_KNOWN_ID_ROWS, KnownIdRow, WireError, known_id_row

COLUMNS = ("vendor_id", "product_id", "kind", "model")


class KnownIdsImportError(ValueError):
    """The file cannot be imported; the message is one line naming the first bad row."""


def parse_known_ids_file(path: Path) -> list[KnownIdRow]:
    """Every row of the file, checked; KnownIdsImportError when any is wrong (nothing is kept then)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise KnownIdsImportError(
                    f"{path} line 1: missing column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}"
                )
            raw = list(enumerate(reader, start=2))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise KnownIdsImportError(f"{path}: cannot read the file: {exc}") from None
    rows: list[KnownIdRow] = []
    problems: list[str] = []
    lines: dict[tuple[str, str], int] = {}
    for number, row in raw:
        try:
            checked = known_id_row(row["vendor_id"], row["product_id"], (row["kind"] or "").strip(), row["model"] or "")
        except WireError as exc:
            problems.append(f"line {number}: {exc.detail}")
            continue
        key = checked[:2]
        if key in lines:
            problems.append(f"line {number}: {key[0]}:{key[1]} is on line {lines[key]} too")
            continue
        lines[key] = number
        rows.append(checked)
    if len(rows) > MAX_KNOWN_ID_ROWS:
        problems.append(f"{len(rows)} rows; at most {MAX_KNOWN_ID_ROWS} are handed to agents")
    if problems:
        more = f" (and {len(problems) - 1} more bad row(s))" if len(problems) > 1 else ""
        raise KnownIdsImportError(f"{path}: nothing imported; {problems[0]}{more}")
    return rows


class KnownIds:
    """The imported known ids in the state file."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def replace(self, rows: list[KnownIdRow]) -> None:
        """The stored list becomes exactly ``rows``, in one transaction."""
        with self._store.transaction() as db:
            db.execute("DELETE FROM known_ids")
            db.executemany(
                "INSERT INTO known_ids (vendor_id, product_id, kind, model, line) VALUES (?, ?, ?, ?, ?)",
                [(*row, index) for index, row in enumerate(rows)],
            )

    def rows(self) -> list[KnownIdRow]:
        """The stored rows, in the file's order."""
        found = self._store.query("SELECT vendor_id, product_id, kind, model FROM known_ids ORDER BY line")
        return [(str(v), str(p), str(k), str(m)) for v, p, k, m in found]


def import_known_ids(known: KnownIds, path: Path) -> int:
    rows = parse_known_ids_file(path)
    known.replace(rows)
    return len(rows)
