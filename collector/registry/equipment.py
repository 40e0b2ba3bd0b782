"""The equipment issued to communes: document scanners, digital-signature tokens, printers.

Kept in the state file (table ``equipment``, declared by ``collector/store.py``). An import names
whole communes: every commune that appears in the file gets exactly the file's rows, so a
corrected spreadsheet imported again replaces what it says, and communes it leaves out keep theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.store import Store


@dataclass(frozen=True)
class IssuedItem:
    """One piece of equipment as issued: to which commune, what, and to whom."""

    province: str
    commune: str
    kind: str  # scanner, token, printer or other (common.wire.PERIPHERAL_KINDS)
    model: str
    serial: str  # "" when the issuing list has none: then it is matched by kind and count
    holder: str
    issued_on: str  # ISO date


COLUMNS = "province, commune, kind, model, serial, holder, issued_on"


class Equipment:
    """The issued equipment in the state file."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def replace_communes(self, items: list[IssuedItem]) -> None:
        """Every commune named in ``items`` gets exactly these items, in one transaction."""
        communes = sorted({item.commune for item in items})
        with self._store.transaction() as db:
            db.executemany("DELETE FROM equipment WHERE commune = ?", [(c,) for c in communes])
            db.executemany(
                f"INSERT INTO equipment ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(i.province, i.commune, i.kind, i.model, i.serial, i.holder, i.issued_on) for i in items],
            )

    def items(self, commune: str | None = None) -> list[IssuedItem]:
        """Issued items, all or one commune's, in the order they were imported."""
        if commune is None:
            rows = self._store.query(f"SELECT {COLUMNS} FROM equipment ORDER BY commune, id")
        else:
            rows = self._store.query(f"SELECT {COLUMNS} FROM equipment WHERE commune = ? ORDER BY id", (commune,))
        return [IssuedItem(*row) for row in rows]
