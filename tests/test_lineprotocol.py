"""Line protocol escaping: what we encode is stored by a real InfluxDB exactly as meant."""

from __future__ import annotations

import urllib.request

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from realservices import Influxd

from collector.ingest.lineprotocol import LineProtocolError, Point, encode_point

TAGS = {"province": "08", "area": "unassigned", "commune": "02473", "host": "pc-01"}


def test_numbers_are_floats_and_strings_quoted() -> None:
    line = encode_point(Point("probe", {**TAGS, "target": "gateway"}, {"ok": 1, "error": 'say "hi" \\'}, 100))
    assert line == (
        'probe,area=unassigned,commune=02473,host=pc-01,province=08,target=gateway ok=1.0,error="say \\"hi\\" \\\\" 100'
    )


@pytest.mark.parametrize("value", ["a,b", "a=b", "a b", "a\nb", "ab\n", "a\\", "", "x" * 65])
def test_unsafe_tag_values_are_refused(value: str) -> None:
    with pytest.raises(LineProtocolError):
        encode_point(Point("system", {**TAGS, "host": value}, {"cpu_percent": 1.0}, 1))


def test_non_finite_numbers_and_empty_fields_are_refused() -> None:
    with pytest.raises(LineProtocolError):
        encode_point(Point("system", TAGS, {"cpu_percent": float("nan")}, 1))
    with pytest.raises(LineProtocolError):
        encode_point(Point("system", TAGS, {}, 1))


@settings(max_examples=60, deadline=None)
@given(text=st.text(min_size=0, max_size=80))
def test_any_string_field_round_trips_through_real_influxdb(text: str, influxd: Influxd) -> None:
    database = "t_roundtrip"
    influxd.create_database(database)
    line = encode_point(Point("probe", {**TAGS, "target": "x"}, {"error": text}, 1_700_000_000))
    request = urllib.request.Request(f"{influxd.url}/write?db={database}&precision=s", data=line.encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204
    rows = influxd.query('SELECT "error" FROM "probe" WHERE time = 1700000000s', database)
    expected = text.replace("\r", " ").replace("\n", " ")
    assert rows[-1]["error"] == expected


def test_floats_written_in_one_call_are_stored_exactly_by_real_influxdb(influxd: Influxd) -> None:
    database = "t_floats"
    influxd.create_database(database)
    fields = {"a": 1e16, "b": 1e-7, "c": -2.5e-300, "d": 1.7976931348623157e308, "e": 0.1 + 0.2, "f": 5.0}
    line = encode_point(Point("system", TAGS, fields, 1_700_000_000))
    assert line.endswith(" a=1e16,b=1e-7,c=-2.5e-300,d=1.7976931348623157e308,e=0.30000000000000004,f=5.0 1700000000")
    request = urllib.request.Request(f"{influxd.url}/write?db={database}&precision=s", data=line.encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204
    (row,) = influxd.query('SELECT * FROM "system" WHERE time = 1700000000s', database)
    assert {key: row[key] for key in fields} == fields
