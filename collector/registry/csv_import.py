"""Importing the registry from CSV or XLSX: the communes' lines (ISP, circuit, contracted speeds,
install date), the areas (which IT team covers which communes), the equipment issued to communes
(scanners, digital-signature tokens: kind, model, serial, holder, issue date) and the hosts to
enrol in bulk (province, commune, host).

Every row is checked first; if any is wrong, nothing is written and every problem is reported
with its line (CSV) or row (XLSX) number, so a spreadsheet is fixed in one go. The CLI
(``registry import``...) and the web console's upload go through the same two steps: ``check``
reads and checks a file into a ``Checked``, ``store`` writes it in one transaction.

A file is XLSX when its name ends in ``.xlsx`` or its bytes start like a ZIP archive; its first
sheet is read, the first row being the header, as in the CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from collector.registry import units
from collector.registry.enroll import EnrollError, Place, checked_place
from collector.registry.equipment import Equipment, IssuedItem
from collector.registry.registry import Line, Registry
from collector.vocabulary import IMPORT_PROBLEMS, IMPORT_UNITS
from common.wire import PERIPHERAL_KINDS

LINE_COLUMNS = ("commune", "isp", "circuit_id", "contracted_down_mbps", "contracted_up_mbps", "installed_on")
AREA_COLUMNS = ("area_code", "area_name", "commune")
HOST_COLUMNS = ("province", "commune", "host")
EQUIPMENT_COLUMNS = ("commune", "kind", "model", "serial", "holder", "issued_on")
CODE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_ROWS = 50_000  # a province has about 3,300 communes; a file far longer is not a registry list
MAX_COLUMNS = 64
ZIP_MAGIC = b"PK\x03\x04"
Parsed = TypeVar("Parsed")


class RegistryImportError(ValueError):
    """The file cannot be imported; ``problems`` lists every bad row."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        super().__init__(f"{path}: nothing imported; fix these rows:\n  " + "\n  ".join(problems))
        self.problems = problems


class Problem(str):
    """One bad row (or a file that cannot be read): the string itself is the English the CLI prints;
    ``in_("vi")`` is the Vietnamese the console shows. Words from ``vocabulary.IMPORT_PROBLEMS``."""

    vi: str

    def __new__(cls, en: str, vi: str) -> Problem:
        made = super().__new__(cls, en)
        made.vi = vi
        return made

    def in_(self, lang: str) -> str:
        return self.vi if lang == "vi" else str(self)


def said(key: str, unit: str = "line", at: int | None = None, first: int | None = None, **values: object) -> Problem:
    """The problem ``key`` at row ``at`` (a CSV's line or a sheet's row), ``first`` an earlier row it repeats."""
    words = IMPORT_PROBLEMS[key]
    unit_words = IMPORT_UNITS[unit]

    def text(lang: str) -> str:
        rows = {"at": f"{unit_words.in_(lang)} {at}", "first": f"{unit_words.in_(lang)} {first}"}
        return words.in_(lang).format(**rows, **values)

    return Problem(text("en"), text("vi"))


At = tuple[str, int]  # a row: its unit ("line" of a CSV, "row" of a sheet) and its number


def bad(where: At, key: str, first: int | None = None, **values: object) -> Problem:
    return said(key, where[0], where[1], first, **values)


@dataclass(frozen=True)
class Source:
    """A file to import: its name (shown in messages; ``.xlsx`` names the format) and its bytes."""

    name: str
    data: bytes

    @property
    def is_xlsx(self) -> bool:
        return self.name.lower().endswith(".xlsx") or self.data.startswith(ZIP_MAGIC)

    @property
    def unit(self) -> str:
        """What a numbered row is called in messages: a CSV's line, a sheet's row."""
        return "row" if self.is_xlsx else "line"


def source_of(file: Path | Source) -> Source:
    if isinstance(file, Source):
        return file
    try:
        return Source(str(file), file.read_bytes())
    except OSError as exc:
        raise RegistryImportError(file, [said("unreadable", error=exc)]) from None


@dataclass
class Areas:
    names: dict[str, str] = field(default_factory=dict)
    communes: dict[str, list[str]] = field(default_factory=dict)


def cell_text(value: object) -> str:
    """A spreadsheet cell as the text a CSV would hold: a date as 2025-07-01, 100.0 as 100."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def csv_table(source: Source) -> list[list[str]]:
    text = source.data.decode("utf-8-sig")
    return [row for row in csv.reader(io.StringIO(text, newline=""))]


def xlsx_table(source: Source) -> list[list[str]]:
    """The first sheet's rows as text, trailing empty rows left out; at most MAX_ROWS + 1."""
    from openpyxl import load_workbook  # only the collector's import needs it

    book = load_workbook(io.BytesIO(source.data), read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        rows: list[list[str]] = []
        for values in sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS):
            rows.append([cell_text(v) for v in values])
            if len(rows) > MAX_ROWS + 1:
                break
    finally:
        book.close()
    while rows and not any(rows[-1]):
        rows.pop()
    return rows


def read_table(source: Source) -> list[list[str]]:
    try:
        return xlsx_table(source) if source.is_xlsx else csv_table(source)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RegistryImportError(source.name, [said("not_csv", error=exc)]) from None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, IndexError, TypeError) as exc:
        raise RegistryImportError(source.name, [said("not_xlsx", error=exc)]) from None


def read_rows(file: Path | Source, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Each data row (numbered as a spreadsheet numbers it: the header is 1) by column name."""
    source = source_of(file)
    table = read_table(source)
    header = [name.strip() for name in table[0]] if table else []
    missing = [c for c in columns if c not in header]
    if missing:
        problem = said("missing_columns", source.unit, 1, missing=", ".join(missing), columns=", ".join(columns))
        raise RegistryImportError(source.name, [problem])
    if len(table) > MAX_ROWS + 1:
        raise RegistryImportError(source.name, [said("too_many_rows", most=MAX_ROWS)])
    out = []
    for index, values in enumerate(table[1:]):
        if not any(v.strip() for v in values):
            continue  # a blank row between blocks
        row = {name: (values[i] if i < len(values) else "").strip() for i, name in enumerate(header) if name}
        out.append((index + 2, row))
    return out


def official_commune(raw: str, problems: list[str], where: At) -> units.Commune | None:
    """The official commune of a row's ``commune`` (``2473`` or ``02473``); None, with the problem
    noted, when it is not an official code."""
    found = units.commune(f"{int(raw):05d}" if raw.isdigit() else raw)
    if found is None:
        problems.append(bad(where, "commune_unknown", raw=repr(raw)))
    return found


def checked(source: Source, problems: list[str], parsed: Parsed) -> Parsed:
    """What a file gave when every row was right; otherwise RegistryImportError listing every problem."""
    if problems:
        raise RegistryImportError(source.name, problems)
    return parsed


def speed(raw: str, column: str, problems: list[str], where: At) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 100_000:
        problems.append(bad(where, "speed", column=column, raw=repr(raw)))
    return value


def parse_lines(file: Path | Source) -> list[Line]:
    source = source_of(file)
    problems: list[str] = []
    lines: list[Line] = []
    circuits: dict[str, int] = {}
    for number, row in read_rows(source, LINE_COLUMNS):
        where = (source.unit, number)
        commune = official_commune(row["commune"], problems, where)
        circuit = row["circuit_id"]
        if not CODE_RE.match(circuit):
            problems.append(bad(where, "circuit_bad", raw=repr(circuit)))
        elif circuit in circuits:
            problems.append(bad(where, "circuit_twice", circuits[circuit], raw=repr(circuit)))
        circuits.setdefault(circuit, number)
        if not 0 < len(row["isp"]) <= 64:
            problems.append(bad(where, "isp_length"))
        down = speed(row["contracted_down_mbps"], "contracted_down_mbps", problems, where)
        up = speed(row["contracted_up_mbps"], "contracted_up_mbps", problems, where)
        installed = row["installed_on"]
        if installed:
            try:
                dt.date.fromisoformat(installed)
            except ValueError:
                problems.append(bad(where, "installed_on", raw=repr(installed)))
        if commune is not None:
            lines.append(Line(circuit, commune.province_code, commune.code, row["isp"], down, up, installed))
    return checked(source, problems, lines)


def parse_areas(file: Path | Source) -> Areas:
    source = source_of(file)
    problems: list[str] = []
    areas = Areas()
    assigned: dict[str, int] = {}
    for number, row in read_rows(source, AREA_COLUMNS):
        where = (source.unit, number)
        area, name = row["area_code"], row["area_name"]
        if not CODE_RE.match(area):
            problems.append(bad(where, "area_code_bad", raw=repr(area)))
        if not 0 < len(name) <= 100:
            problems.append(bad(where, "area_name_length"))
        elif areas.names.setdefault(area, name) != name:
            problems.append(bad(where, "area_renamed", raw=repr(area), name=repr(areas.names[area])))
        commune = official_commune(row["commune"], problems, where)
        if commune is None:
            continue
        code = commune.code
        if code in assigned:
            problems.append(bad(where, "commune_twice", assigned[code], code=code))
        assigned.setdefault(code, number)
        areas.communes.setdefault(area, []).append(code)
    return checked(source, problems, areas)


def issue_date(raw: str, today: dt.date, problems: list[str], where: At) -> None:
    try:
        issued = dt.date.fromisoformat(raw)
    except ValueError:
        problems.append(bad(where, "issued_on", raw=repr(raw)))
        return
    if issued > today:
        problems.append(bad(where, "issued_future", raw=raw, today=today.isoformat()))


def parse_equipment(file: Path | Source, today: dt.date | None = None) -> list[IssuedItem]:
    """Every row of an equipment CSV checked; raises RegistryImportError listing every bad row."""
    today = today or dt.date.today()
    source = source_of(file)
    problems: list[str] = []
    items: list[IssuedItem] = []
    serials: dict[tuple[str, str], int] = {}
    for number, row in read_rows(source, EQUIPMENT_COLUMNS):
        where = (source.unit, number)
        commune = official_commune(row["commune"], problems, where)
        kind = row["kind"]
        if kind not in PERIPHERAL_KINDS:
            problems.append(bad(where, "kind_bad", raw=repr(kind[:40]), kinds=", ".join(PERIPHERAL_KINDS)))
        if not 0 < len(row["model"]) <= 100:
            problems.append(bad(where, "model_length"))
        serial = row["serial"]
        if len(serial) > 64:
            problems.append(bad(where, "serial_length"))
        elif serial and (kind, serial.casefold()) in serials:
            first = serials[(kind, serial.casefold())]
            problems.append(bad(where, "serial_twice", first, kind=kind, raw=repr(serial)))
        if serial:
            serials.setdefault((kind, serial.casefold()), number)
        if not 0 < len(row["holder"]) <= 100:
            problems.append(bad(where, "holder_length"))
        issue_date(row["issued_on"], today, problems, where)
        if commune is not None:
            items.append(
                IssuedItem(
                    commune.province_code, commune.code, kind, row["model"], serial, row["holder"], row["issued_on"]
                )
            )
    return checked(source, problems, items)


def parse_hosts(file: Path | Source, enrolled: Callable[[Place], bool]) -> list[Place]:
    """The hosts of a bulk enrolment; every bad row (not official, a bad name, twice in the file,
    enrolled already) is listed in one RegistryImportError."""
    source = source_of(file)
    problems: list[str] = []
    places: list[Place] = []
    seen: dict[str, int] = {}
    for number, row in read_rows(source, HOST_COLUMNS):
        where = (source.unit, number)
        try:
            place = checked_place(row["province"], row["commune"], row["host"])
        except EnrollError as exc:
            problems.append(bad(where, "host_refused", text=exc))
            continue
        if place.username in seen:
            first = seen[place.username]
            problems.append(bad(where, "host_twice", first, raw=repr(place.host), commune=place.commune))
        elif enrolled(place):
            problems.append(bad(where, "host_enrolled", raw=repr(place.host), commune=place.commune))
        seen.setdefault(place.username, number)
        places.append(place)
    if not places and not problems:
        problems.append(said("no_hosts"))
    if problems:
        raise RegistryImportError(source.name, problems)
    return places


KINDS = ("lines", "areas", "equipment")  # what the CLI and the console import
COLUMNS = {"lines": LINE_COLUMNS, "areas": AREA_COLUMNS, "equipment": EQUIPMENT_COLUMNS}


@dataclass(frozen=True)
class Checked:
    """A file whose every row is right, ready to store: its kind and what it holds."""

    kind: str
    name: str
    lines: list[Line] = field(default_factory=list)
    areas: Areas = field(default_factory=Areas)
    items: list[IssuedItem] = field(default_factory=list)

    def rows(self) -> list[tuple[str, ...]]:
        """What will be stored, row by row, in the file's columns (``COLUMNS[kind]``), for a preview."""
        if self.kind == "lines":
            return [(ln.commune, ln.isp, ln.circuit_id, f"{ln.contracted_down_mbps:g}", f"{ln.contracted_up_mbps:g}",
                     ln.install_date) for ln in self.lines]  # fmt: skip
        if self.kind == "areas":
            return [
                (code, self.areas.names[code], c) for code, communes in self.areas.communes.items() for c in communes
            ]
        return [(i.commune, i.kind, i.model, i.serial, i.holder, i.issued_on) for i in self.items]

    @property
    def count(self) -> int:
        """The rows it holds (for areas: the communes assigned)."""
        if self.kind == "areas":
            return sum(len(codes) for codes in self.areas.communes.values())
        return len(self.lines) if self.kind == "lines" else len(self.items)


def check(kind: str, file: Path | Source, today: dt.date | None = None) -> Checked:
    """Read and check every row of a file of ``kind`` (one of KINDS); RegistryImportError lists every bad row."""
    source = source_of(file)
    if kind == "lines":
        return Checked(kind, source.name, lines=parse_lines(source))
    if kind == "areas":
        return Checked(kind, source.name, areas=parse_areas(source))
    if kind == "equipment":
        return Checked(kind, source.name, items=parse_equipment(source, today))
    raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")


def store(checked: Checked, registry: Registry | None, equipment: Equipment | None) -> int:
    """Write a checked file in one transaction (all of it or, on an error, nothing); how many rows.
    Lines and areas go to ``registry``, equipment to ``equipment``."""
    if checked.kind == "equipment":
        if equipment is None:
            raise ValueError("equipment is stored through an Equipment")
        equipment.replace_communes(checked.items)
        return checked.count
    if registry is None:
        raise ValueError(f"{checked.kind} are stored through the Registry")
    if checked.kind == "lines":
        registry.upsert_lines(checked.lines)
    else:
        registry.set_areas(checked.areas.names, checked.areas.communes)
    return checked.count


def import_lines(registry: Registry, file: Path | Source) -> int:
    return store(check("lines", file), registry, None)


def import_areas(registry: Registry, file: Path | Source) -> int:
    return store(check("areas", file), registry, None)


def import_equipment(equipment: Equipment, file: Path | Source) -> int:
    return store(check("equipment", file), None, equipment)
