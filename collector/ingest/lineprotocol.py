"""InfluxDB line protocol encoding with strict escaping and validated tag values.

Tag values are checked against a closed alphabet first; escaping is the second line of
defence. Numbers are always written as floats (a field first written as float rejects later
integers), timestamps in whole seconds (precision ``s``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import NamedTuple

import msgspec

# \Z, not $: "$" also matches before a final newline, and a tag must never hold one.
TAG_VALUE_RE = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}\Z")
KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


class LineProtocolError(ValueError):
    """A point that cannot be written safely."""


class Point(NamedTuple):
    """One point to write. A named tuple, not a frozen dataclass: a report makes several, and a
    tuple is built several times faster."""

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


# A series' head (measurement and sorted tags, checked and escaped) for the same tags in the same
# order: a host's few series repeat in every report. None marks a refused one.
@lru_cache(maxsize=65536)
def _series(measurement: str, tags: tuple[tuple[str, str], ...]) -> str | None:
    head = _checked_measurement(measurement)
    if head is None:
        return None
    parts = [head]
    for key, value in sorted(tags):
        tag_key, escaped_value = _checked_key(key), _checked_tag_value(value)
        if tag_key is None or escaped_value is None:
            return None
        parts.append(f"{tag_key}={escaped_value}")
    return ",".join(parts)


# Each field key once checked and escaped, with its "=": a float field is then one concatenation.
_FIELD_PREFIXES: dict[str, str] = {}
MAX_FIELD_KEYS = 4096


def _field(key: str, value: float | str) -> str:
    prefix = _FIELD_PREFIXES.get(key)
    if prefix is None:
        field_key = _checked_key(key)
        if field_key is None:
            raise LineProtocolError(f"field key {key!r} is not a plain name")
        if len(_FIELD_PREFIXES) >= MAX_FIELD_KEYS:
            _FIELD_PREFIXES.clear()
        prefix = _FIELD_PREFIXES[key] = field_key + "="
    return prefix + _field_value(key, value)


def _refusal(point: Point) -> LineProtocolError:
    """Why a point's measurement or tags cannot be written, for its error message."""
    if _checked_measurement(point.measurement) is None:
        return LineProtocolError(f"measurement {point.measurement!r} is not a plain name")
    for key in sorted(point.tags):
        value = point.tags[key]
        if _checked_key(key) is None or _checked_tag_value(value) is None:
            return LineProtocolError(f"tag {key}={value!r} does not match {TAG_VALUE_RE.pattern}")
    return LineProtocolError(f"point {point.measurement} cannot be written")


_to_json = msgspec.json.encode
_FLOAT = {float}


@lru_cache(maxsize=1024)
def _plain_keys(keys: tuple[str, ...]) -> bool:
    return all(KEY_RE.match(key) for key in keys)


def _float_fields(fields: Mapping[str, float | str]) -> str | None:
    """``k=v,...`` for fields that are all floats under plain keys, formatted in one C call; None
    for anything else (strings, whole numbers, NaN, infinities), which takes the path field by field.

    msgspec writes a float as ``repr`` does (the shortest text that reads back the same value),
    but exponents as ``1e16`` rather than ``1e+16``; InfluxDB reads both as the same float. A plain
    key needs no escaping, and a number holds no quote or colon, so the JSON object's text turns
    into line protocol by dropping the braces and the quotes and writing ``=`` for ``:``.
    """
    if type(fields) is not dict or set(map(type, fields.values())) != _FLOAT or not _plain_keys(tuple(fields)):
        return None
    text = _to_json(fields)
    if b":null" in text:  # NaN or an infinity
        return None
    return text.translate(None, b'{}"').replace(b":", b"=").decode()


def series_head(measurement: str, tags: Mapping[str, str]) -> str:
    """A series' measurement and sorted tags, checked and escaped; raises LineProtocolError for
    anything unsafe, as ``encode_point`` does."""
    head = _series(measurement, tuple(tags.items()))
    if head is None:
        raise _refusal(Point(measurement, tags, {}, 0))
    return head


def float_field_sets(objects: bytes, labels: Sequence[str | None]) -> list[str] | None:
    """The fields (``k=v,...``) of each object of ``objects``, the JSON text of a list of flat
    objects under plain keys whose values are numbers (msgspec's encoding of report items whose
    text fields are unset), in one pass over the text; None when a value is null (NaN or an
    infinity), for the path field by field, which refuses it.

    ``labels[i]`` names object i's label, a string that must be its last member: a tag, not a
    field, so it is cut off here ("" is left for an object holding its label alone). Floats are
    written as ``_float_fields`` writes them; a label's text has no quote, brace or comma (its
    alphabet), so each object is the text between ``},{``.
    """
    if b":null" in objects:
        return None
    sets = objects[2:-2].translate(_FIELDS_TABLE, b'"').decode().split("},{")
    for index, label in enumerate(labels):
        if label is not None:
            text = sets[index]
            cut = text.rfind(f",{label}=")
            sets[index] = text[:cut] if cut >= 0 else ""
    return sets


_FIELDS_TABLE = bytes.maketrans(b":", b"=")


def encode_point(point: Point) -> str:
    """One line of line protocol; raises LineProtocolError for anything unsafe."""
    head = _series(point.measurement, tuple(point.tags.items()))
    if head is None:
        raise _refusal(point)
    if not point.fields:
        raise LineProtocolError(f"point {point.measurement} has no fields")
    fields = _float_fields(point.fields)
    if fields is None:
        fields = ",".join([_field(key, value) for key, value in point.fields.items()])
    return f"{head} {fields} {int(point.ts)}"
