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
    if isinstance(value, str):
        return escape_string_field(value.replace("\r", " ").replace("\n", " "))
    number = float(value)
    if not math.isfinite(number):
        raise LineProtocolError(f"field {key} is not finite")
    return repr(number)


def encode_point(point: Point) -> str:
    """One line of line protocol; raises LineProtocolError for anything unsafe."""
    if not KEY_RE.match(point.measurement):
        raise LineProtocolError(f"measurement {point.measurement!r} is not a plain name")
    parts = [escape_measurement(point.measurement)]
    for key in sorted(point.tags):
        tag_value = point.tags[key]
        if not KEY_RE.match(key) or not TAG_VALUE_RE.match(tag_value):
            raise LineProtocolError(f"tag {key}={tag_value!r} does not match {TAG_VALUE_RE.pattern}")
        parts.append(f"{escape_key(key)}={escape_key(tag_value)}")
    if not point.fields:
        raise LineProtocolError(f"point {point.measurement} has no fields")
    fields = []
    for key, value in point.fields.items():
        if not KEY_RE.match(key):
            raise LineProtocolError(f"field key {key!r} is not a plain name")
        fields.append(f"{escape_key(key)}={_field_value(key, value)}")
    return f"{','.join(parts)} {','.join(fields)} {int(point.ts)}"
