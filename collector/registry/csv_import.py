"""Importing the registry from CSV: the communes' lines (ISP, circuit, contracted speeds, install
date), the areas (which IT team covers which communes), the equipment issued to communes
(scanners, digital-signature tokens: kind, model, serial, holder, issue date) and the hosts to
enrol in bulk (province, commune, host).

Every row is checked first; if any is wrong, nothing is written and every problem is reported
with its line number, so a spreadsheet is fixed in one go.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from collector.registry import units
from collector.registry.enroll import EnrollError, Place, checked_place
from collector.registry.equipment import Equipment, IssuedItem
from collector.registry.registry import Line, Registry
from common.wire import PERIPHERAL_KINDS

LINE_COLUMNS = ("commune", "isp", "circuit_id", "contracted_down_mbps", "contracted_up_mbps", "installed_on")
AREA_COLUMNS = ("area_code", "area_name", "commune")
HOST_COLUMNS = ("province", "commune", "host")
EQUIPMENT_COLUMNS = ("commune", "kind", "model", "serial", "holder", "issued_on")
CODE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
Parsed = TypeVar("Parsed")


class RegistryImportError(ValueError):
    """The file cannot be imported; ``problems`` lists every bad row."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path}: nothing imported; fix these rows:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass
class Areas:
    names: dict[str, str] = field(default_factory=dict)
    communes: dict[str, list[str]] = field(default_factory=dict)


def read_rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise RegistryImportError(
                    path, [f"line 1: missing column(s) {', '.join(missing)}; expected {', '.join(columns)}"]
                )
            return [
                (index + 2, {k: (v or "").strip() for k, v in row.items() if k}) for index, row in enumerate(reader)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RegistryImportError(path, [f"cannot read the file: {exc}"]) from None


def official_commune(raw: str, problems: list[str], where: str) -> units.Commune | None:
    """The official commune of a row's ``commune`` (``2473`` or ``02473``); None, with the problem
    noted, when it is not an official code."""
    found = units.commune(f"{int(raw):05d}" if raw.isdigit() else raw)
    if found is None:
        problems.append(f"{where}: commune {raw!r} is not an official commune code")
    return found


def checked(path: Path, problems: list[str], parsed: Parsed) -> Parsed:
    """What a file gave when every row was right; otherwise RegistryImportError listing every problem."""
    if problems:
        raise RegistryImportError(path, problems)
    return parsed


def speed(raw: str, column: str, problems: list[str], where: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 100_000:
        problems.append(f"{where}: {column} = {raw!r} must be a number of Mb/s above 0")
    return value


def parse_lines(path: Path) -> list[Line]:
    problems: list[str] = []
    lines: list[Line] = []
    circuits: dict[str, int] = {}
    for number, row in read_rows(path, LINE_COLUMNS):
        where = f"line {number}"
        commune = official_commune(row["commune"], problems, where)
        circuit = row["circuit_id"]
        if not CODE_RE.match(circuit):
            problems.append(f"{where}: circuit_id {circuit!r} must be 1-64 letters, digits, '_', '.', ':' or '-'")
        elif circuit in circuits:
            problems.append(f"{where}: circuit_id {circuit!r} already on line {circuits[circuit]}")
        circuits.setdefault(circuit, number)
        if not 0 < len(row["isp"]) <= 64:
            problems.append(f"{where}: isp must be 1 to 64 characters")
        down = speed(row["contracted_down_mbps"], "contracted_down_mbps", problems, where)
        up = speed(row["contracted_up_mbps"], "contracted_up_mbps", problems, where)
        installed = row["installed_on"]
        if installed:
            try:
                dt.date.fromisoformat(installed)
            except ValueError:
                problems.append(f"{where}: installed_on {installed!r} must be a date like 2025-07-01")
        if commune is not None:
            lines.append(Line(circuit, commune.province_code, commune.code, row["isp"], down, up, installed))
    return checked(path, problems, lines)


def parse_areas(path: Path) -> Areas:
    problems: list[str] = []
    areas = Areas()
    assigned: dict[str, int] = {}
    for number, row in read_rows(path, AREA_COLUMNS):
        where = f"line {number}"
        area, name = row["area_code"], row["area_name"]
        if not CODE_RE.match(area):
            problems.append(f"{where}: area_code {area!r} must be 1-64 letters, digits, '_', '.', ':' or '-'")
        if not 0 < len(name) <= 100:
            problems.append(f"{where}: area_name must be 1 to 100 characters")
        elif areas.names.setdefault(area, name) != name:
            problems.append(f"{where}: area {area!r} is named {areas.names[area]!r} on an earlier line")
        commune = official_commune(row["commune"], problems, where)
        if commune is None:
            continue
        code = commune.code
        if code in assigned:
            problems.append(f"{where}: commune {code} is already assigned on line {assigned[code]}")
        assigned.setdefault(code, number)
        areas.communes.setdefault(area, []).append(code)
    return checked(path, problems, areas)


def import_lines(registry: Registry, path: Path) -> int:
    lines = parse_lines(path)
    registry.upsert_lines(lines)
    return len(lines)


def import_areas(registry: Registry, path: Path) -> int:
    areas = parse_areas(path)
    for code, communes in areas.communes.items():
        registry.set_area(code, areas.names[code], communes)
    return sum(len(communes) for communes in areas.communes.values())


def issue_date(raw: str, today: dt.date, problems: list[str], where: str) -> None:
    try:
        issued = dt.date.fromisoformat(raw)
    except ValueError:
        problems.append(f"{where}: issued_on {raw!r} must be a date like 2025-07-01")
        return
    if issued > today:
        problems.append(f"{where}: issued_on {raw} is in the future (today is {today.isoformat()})")


def parse_equipment(path: Path, today: dt.date | None = None) -> list[IssuedItem]:
    """Every row of an equipment CSV checked; raises RegistryImportError listing every bad row."""
    today = today or dt.date.today()
    problems: list[str] = []
    items: list[IssuedItem] = []
    serials: dict[tuple[str, str], int] = {}
    for number, row in read_rows(path, EQUIPMENT_COLUMNS):
        where = f"line {number}"
        commune = official_commune(row["commune"], problems, where)
        kind = row["kind"]
        if kind not in PERIPHERAL_KINDS:
            problems.append(f"{where}: kind {kind[:40]!r} must be one of {', '.join(PERIPHERAL_KINDS)}")
        if not 0 < len(row["model"]) <= 100:
            problems.append(f"{where}: model must be 1 to 100 characters")
        serial = row["serial"]
        if len(serial) > 64:
            problems.append(f"{where}: serial must be at most 64 characters (or empty when there is none)")
        elif serial and (kind, serial.casefold()) in serials:
            problems.append(f"{where}: {kind} serial {serial!r} already on line {serials[(kind, serial.casefold())]}")
        if serial:
            serials.setdefault((kind, serial.casefold()), number)
        if not 0 < len(row["holder"]) <= 100:
            problems.append(f"{where}: holder must be 1 to 100 characters (a person, or the desk, e.g. Một cửa)")
        issue_date(row["issued_on"], today, problems, where)
        if commune is not None:
            items.append(
                IssuedItem(
                    commune.province_code, commune.code, kind, row["model"], serial, row["holder"], row["issued_on"]
                )
            )
    return checked(path, problems, items)


def import_equipment(equipment: Equipment, path: Path) -> int:
    items = parse_equipment(path)
    equipment.replace_communes(items)
    return len(items)


def parse_hosts(path: Path, enrolled: Callable[[Place], bool]) -> list[Place]:
    """The hosts of a bulk enrolment; every bad row (not official, a bad name, twice in the file,
    enrolled already) is listed in one RegistryImportError."""
    problems: list[str] = []
    places: list[Place] = []
    seen: dict[str, int] = {}
    for number, row in read_rows(path, HOST_COLUMNS):
        where = f"line {number}"
        try:
            place = checked_place(row["province"], row["commune"], row["host"])
        except EnrollError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if place.username in seen:
            problems.append(
                f"{where}: host {place.host!r} of commune {place.commune} is on line {seen[place.username]} too"
            )
        elif enrolled(place):
            problems.append(f"{where}: host {place.host!r} of commune {place.commune} is enrolled already")
        seen.setdefault(place.username, number)
        places.append(place)
    if not places and not problems:
        problems.append("no hosts in the file")
    if problems:
        raise RegistryImportError(path, problems)
    return places
