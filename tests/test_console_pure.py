"""The console's pure parts: its SVG charts, its sessions (expiry, revocation by digest, held
uploads), and the one import path the console and the CLI share, now reading XLSX as well as CSV
(the CLI's ``registry import`` takes an XLSX and still takes its CSV)."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from openpyxl import Workbook

from collector.cli import main
from collector.http.auth import Token
from collector.http.console.charts import chart, scale_top
from collector.http.sessions import MAX_PENDING, PENDING_S, Sessions, same
from collector.registry.csv_import import RegistryImportError, Source, check, parse_lines, read_rows
from collector.registry.registry import Registry
from collector.store import Store

REPO = Path(__file__).resolve().parent.parent
HEADER = ["commune", "isp", "circuit_id", "contracted_down_mbps", "contracted_up_mbps", "installed_on"]


def xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)  # type: ignore[union-attr]
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_chart_scales_to_a_round_top_and_marks_the_contract() -> None:
    drawn = chart("speed", [(0.0, 40.0), (50.0, 80.0), (100.0, 20.0)], 0.0, 100.0, reference=100.0)
    assert drawn.points == "0.0,49.6 150.0,19.2 300.0,64.8"  # y: 80 - 76 * value / 100
    assert (drawn.top, drawn.last, drawn.reference_y, drawn.last_x) == ("100", "20", 4.0, 300.0)
    assert chart("none", [], 0.0, 100.0).points == ""
    assert chart("before", [(-5.0, 1.0)], 0.0, 100.0).points == ""  # outside the window: not drawn
    assert [scale_top(v) for v in (0.0, 0.3, 3.0, 7.0, 12.0, 100.0, 101.0)] == [1.0, 0.5, 5.0, 10.0, 20.0, 100.0, 200.0]


def test_sessions_expire_end_with_their_token_and_hold_uploads_once() -> None:
    sessions = Sessions(lifetime_s=60)
    token = Token("an", "admin", "ab" * 32)
    opened = sessions.open(token, now=1000.0)
    assert sessions.get(opened.id, now=1059.0) is opened and opened.token_sha256 == token.sha256
    assert sessions.get(opened.id, now=1060.0) is None and sessions.get(opened.id, now=1000.0) is None  # gone
    assert sessions.get("", now=1000.0) is None and sessions.get(None) is None
    assert same(opened.csrf, opened.csrf) and not same(None, opened.csrf) and not same("x", opened.csrf)

    held = [opened.hold(f"file-{n}", now=2000.0 + n) for n in range(MAX_PENDING + 1)]
    assert held[0].id not in opened.pending and len(opened.pending) == MAX_PENDING  # the oldest dropped
    assert opened.take(held[1].id, now=2001.0 + PENDING_S) is None  # too old
    taken = opened.take(held[2].id, now=2010.0)
    assert taken is not None and taken.checked == "file-2"
    assert opened.take(held[2].id, now=2010.0) is None  # a confirmation is used once


def test_an_xlsx_is_read_like_its_csv_with_dates_and_numbers_as_excel_keeps_them() -> None:
    data = xlsx([HEADER, [2473, "VNPT", "TQG-1", 100, 100.0, dt.datetime(2025, 8, 15)], [None] * 6,
                 ["02536", " Viettel ", "TQG-2", 80.5, 40, None]])  # fmt: skip
    lines = parse_lines(Source("lines.xlsx", data))
    assert [(ln.commune, ln.isp, ln.circuit_id, ln.contracted_down_mbps, ln.install_date) for ln in lines] == [
        ("02473", "VNPT", "TQG-1", 100.0, "2025-08-15"),
        ("02536", "Viettel", "TQG-2", 80.5, ""),
    ]
    assert [n for n, _row in read_rows(Source("no-name", data), tuple(HEADER))] == [2, 4]  # by its bytes, blank skipped


def test_every_bad_row_of_an_xlsx_is_named_by_its_row_and_a_broken_file_is_one_sentence() -> None:
    data = xlsx([HEADER, ["99999", "VNPT", "A", 1, 1, ""], ["02473", "", "A", 0, 1, "hôm qua"]])
    with pytest.raises(RegistryImportError) as raised:
        check("lines", Source("x.xlsx", data))
    assert raised.value.problems == [
        "row 2: commune '99999' is not an official commune code",
        "row 3: circuit_id 'A' already on row 2",
        "row 3: isp must be 1 to 64 characters",
        "row 3: contracted_down_mbps = '0' must be a number of Mb/s above 0",
        "row 3: installed_on 'hôm qua' must be a date like 2025-07-01",
    ]
    assert [p.in_("vi") for p in raised.value.problems][:2] == [  # type: ignore[attr-defined]
        "dòng 2: mã xã '99999' không phải mã xã/phường chính thức",
        "dòng 3: circuit_id 'A' đã có ở dòng 2",
    ]
    with pytest.raises(RegistryImportError) as raised:
        check("lines", Source("x.xlsx", b"PK\x03\x04 not really a workbook"))
    assert raised.value.problems[0].startswith("cannot read the file as an XLSX workbook")
    with pytest.raises(RegistryImportError) as raised:
        check("areas", Source("x.csv", b"area_code,commune\n"))
    assert raised.value.problems == ["line 1: missing column(s) area_name; expected area_code, area_name, commune"]
    with pytest.raises(RegistryImportError):
        check("lines", Source("x.csv", b"\xff\xfe\x00 not utf-8"))


def test_the_cli_imports_an_xlsx_and_still_its_csv_and_refuses_a_bad_one_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "collector.toml"
    config.write_text(f'[state]\npath = "{tmp_path / "state.sqlite"}"\n', encoding="utf-8")
    areas = tmp_path / "areas.xlsx"
    areas.write_bytes(xlsx([["area_code", "area_name", "commune"], ["yen-son", "Khu vực Yên Sơn", 2473],
                            ["yen-son", "Khu vực Yên Sơn", 2536]]))  # fmt: skip
    assert main(["registry", "import-areas", str(areas), "-c", str(config)]) == 0
    assert main(["registry", "import", str(REPO / "config/lines.example.csv"), "-c", str(config)]) == 0
    bad = tmp_path / "more-areas.xlsx"
    bad.write_bytes(xlsx([["area_code", "area_name", "commune"], ["hg", "Hà Giang", 691], ["hg", "Hà Giang", 1]]))
    assert main(["registry", "import-areas", str(bad), "-c", str(config)]) == 2
    assert "row 3: commune '1' is not an official commune code" in capsys.readouterr().err
    with Store(tmp_path / "state.sqlite") as store:
        registry = Registry(store, "unassigned")
        assert registry.communes_by_area() == {"yen-son": ["02473", "02536"]}  # the bad file: nothing, not 00691
        assert len(registry.lines()) == 5
