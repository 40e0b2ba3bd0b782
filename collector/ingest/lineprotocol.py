"""InfluxDB line protocol encoding with strict escaping and validated tag values.

Tag values are checked against a closed alphabet first; escaping is the second line of
defence. Numbers are always written as floats (a field first written as float rejects later
integers), timestamps in whole seconds (precision ``s``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

TAG_VALUE_RE = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")
KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class LineProtocolError(ValueError):
    """A point that cannot be written safely."""


@dataclass(frozen=True)
class Point:
    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, float | str]
    ts: int


def escape_measurement(name: str) -> str:
    return name.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")


def escape_key(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def escape_string_field(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _field_value(key: str, value: float | str) -> str:
    if type(value) is float and math.isfinite(value):  # the common case, without the checks below
        return repr(value)
    if isinstance(value, str):
        return escape_string_field(value.replace("\r", " ").replace("\n", " "))
    number = float(value)
    if not math.isfinite(number):
        raise LineProtocolError(f"field {key} is not finite")
    return repr(number)


# Keys come from the contract and tag values from a bounded fleet, so their checked and escaped
# forms are cached: encoding is the collector's largest cost per report. None marks a refused one.
@lru_cache(maxsize=1024)
def _checked_measurement(name: str) -> str | None:
    return escape_measurement(name) if KEY_RE.match(name) else None


@lru_cache(maxsize=1024)
def _checked_key(key: str) -> str | None:
    return escape_key(key) if KEY_RE.match(key) else None


@lru_cache(maxsize=65536)
def _checked_tag_value(value: str) -> str | None:
    return escape_key(value) if TAG_VALUE_RE.match(value) else None


def encode_point(point: Point) -> str:
    """One line of line protocol; raises LineProtocolError for anything unsafe."""
    measurement = _checked_measurement(point.measurement)
    if measurement is None:
        raise LineProtocolError(f"measurement {point.measurement!r} is not a plain name")
    parts = [measurement]
    for key in sorted(point.tags):
        tag_value = point.tags[key]
        tag_key, escaped_value = _checked_key(key), _checked_tag_value(tag_value)
        if tag_key is None or escaped_value is None:
            raise LineProtocolError(f"tag {key}={tag_value!r} does not match {TAG_VALUE_RE.pattern}")
        parts.append(f"{tag_key}={escaped_value}")
    if not point.fields:
        raise LineProtocolError(f"point {point.measurement} has no fields")
    fields = []
    for key, value in point.fields.items():
        field_key = _checked_key(key)
        if field_key is None:
            raise LineProtocolError(f"field key {key!r} is not a plain name")
        fields.append(f"{field_key}={_field_value(key, value)}")
    return f"{','.join(parts)} {','.join(fields)} {int(point.ts)}"
