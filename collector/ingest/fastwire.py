"""Decodes and checks a report in one pass, with msgspec structs built from the wire contract.

Why: decoding JSON into dicts and then walking every field in Python (``common.wire``) was the
largest part of the collector's cost per message. msgspec parses straight into typed structs
and checks types, lengths and closed choices while it parses; labels and streams are matched
against their alphabets just after, through a bounded set of values already found good. The structs are
derived from ``common.wire``'s sections, never declared again, and live on the collector's side
only: the agent (Python 3.8, no server packages) neither imports nor needs msgspec.

The structs accept a strict subset of what the contract accepts, and give the same ``Report``.
Anything they refuse goes to ``common.wire.decode_report``, which either accepts it (the contract
also takes, for example, booleans as numbers or ``v`` as ``1.0``, and skips fields it does not know,
counting them in ``Report.unknown``) or raises its ``WireError``: so
every rejection keeps its exact reason and detail, its counter and its log line.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from common.wire import (
    CAP_RE,
    LABEL_RE,
    MAX_CAPS,
    MAX_LIST_ITEMS,
    MAX_PAYLOAD_BYTES,
    MAX_SEQ,
    MAX_STRING_CHARS,
    NUMBER,
    SECTIONS_BY_KIND,
    STATUS_REASONS,
    STATUS_STATES,
    STREAM_RE,
    VERSION_RE,
    Report,
    Section,
    decode_report,
)

Text = Annotated[str, Meta(max_length=MAX_STRING_CHARS)]
# msgspec searches with the pattern; \Z where common.wire's "$" is used with fullmatch
# Labels and streams are matched against their alphabets after decoding (``structured``), through
# the values already found good: a host's mounts, NICs and stream repeat in every report, and a
# pattern in the struct would search every value again.
Label = str
Seq = Annotated[int, Meta(ge=1, le=MAX_SEQ)]
Stream = str
# gc=False: the cyclic garbage collector does not track the structs (several per message), which
# hold only numbers, text and lists of other such structs, so can never be part of a cycle.
OPTIONS: Final[dict[str, Any]] = {"forbid_unknown_fields": True, "omit_defaults": True, "kw_only": True, "gc": False}


def _item_struct(name: str, section: Section) -> type[msgspec.Struct]:
    """One object of a section: each field optional (null or absent: left out), the label and the
    tag fields required, a field with choices (a tag or not) limited to them."""
    fields: list[tuple[str, Any, Any]] = []
    for key, kind in section.fields.items():
        allowed = section.choices.get(key)
        shape = Literal[allowed] if allowed else (float if kind == NUMBER else Text)
        if key in section.tags:
            fields.append((key, shape, msgspec.NODEFAULT))
        else:
            fields.append((key, shape | None, None))
    if section.label is not None:
        fields.append((section.label, Label, msgspec.NODEFAULT))  # last, as common.wire puts it
    return msgspec.defstruct(f"{name.title()}Item", fields, **OPTIONS)


def _report_struct(kind: str) -> type[msgspec.Struct]:
    fields: list[tuple[str, Any, Any]] = [
        ("v", Literal[1], msgspec.NODEFAULT),
        ("ts", float, msgspec.NODEFAULT),
        ("stream", Stream | None, None),
        ("seq", Seq | None, None),
    ]
    if kind == "status":
        fields.append(("state", Literal[STATUS_STATES], msgspec.NODEFAULT))
        fields.append(("reason", Literal[STATUS_REASONS] | None, None))
        fields.append(("version", str | None, None))
        fields.append(("caps", Annotated[list[str], Meta(max_length=MAX_CAPS)] | None, None))
    for name, section in SECTIONS_BY_KIND[kind].items():
        item = _item_struct(name, section)
        shape = item if section.label is None else Annotated[list[item], Meta(max_length=MAX_LIST_ITEMS)]  # type: ignore[valid-type]
        fields.append((name, shape | UnsetType, UNSET))
    return msgspec.defstruct(f"{kind.title()}Report", fields, **OPTIONS)


DECODERS: Final = {kind: msgspec.json.Decoder(_report_struct(kind)) for kind in SECTIONS_BY_KIND}
SECTION_NAMES: Final = {kind: tuple(sections) for kind, sections in SECTIONS_BY_KIND.items()}
_to_builtins = msgspec.to_builtins


def decode(kind: str, raw: bytes) -> Report:
    """The report in ``raw``, checked against the contract for ``kind``; raises WireError exactly
    as ``common.wire.decode_report`` does."""
    return decode_with_body(kind, raw)[0]


def decode_with_body(kind: str, raw: bytes) -> tuple[Report, Any]:
    """``decode``'s report and the struct it was read from, or None where the contract's own
    decoder took the message (the struct refused it): the struct's items are what the collector
    formats its lines from (``checks.Ingestor``)."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        return decode_report(kind, raw), None  # raises "oversized"
    try:
        body = DECODERS[kind].decode(raw)
    except msgspec.MsgspecError:
        return decode_report(kind, raw), None
    report = structured(kind, body)
    return (decode_report(kind, raw), None) if report is None else (report, body)


# Good labels and streams seen, each set emptied when full: a flood of new values costs checks
# again, never memory. A refused value is never kept, so it is refused every time.
MAX_GOOD: Final = 65536
_GOOD_LABELS: set[str] = set()
_GOOD_STREAMS: set[str] = set()
LABELS: Final = {
    kind: tuple((name, section.label) for name, section in sections.items() if section.label is not None)
    for kind, sections in SECTIONS_BY_KIND.items()
}


def _good(value: str, pattern: re.Pattern[str], good: set[str]) -> bool:
    """Whether ``value`` matches ``pattern`` to its end; remembered in ``good`` when it does."""
    if not pattern.fullmatch(value):
        return False
    if len(good) >= MAX_GOOD:
        good.clear()
    good.add(value)
    return True


def structured(kind: str, body: Any) -> Report | None:
    """The Report of a decoded body, or None where a rule spans fields the structs cannot hold, or
    a label or stream is not in its alphabet (the contract's decoder then names the fault)."""
    stream, seq = body.stream, body.seq
    if stream is not None and stream not in _GOOD_STREAMS and not _good(stream, STREAM_RE, _GOOD_STREAMS):
        return None
    if kind == "status":
        if seq is not None or (body.reason is not None and body.state != "offline"):
            return None
        if body.state != "online":
            return Report(kind, body.ts, state=body.state, stream=stream, reason=body.reason)
        version, caps = body.version, body.caps
        if version is not None and not VERSION_RE.fullmatch(version):
            return None
        if caps is not None and not all(CAP_RE.fullmatch(cap) for cap in caps):
            return None
        return Report(
            kind, body.ts, state=body.state, stream=stream, version=version, caps=None if caps is None else tuple(caps)
        )
    if (stream is None) != (seq is None):
        return None
    whole = _to_builtins(body)  # one C call; unset sections and null fields left out (omit_defaults)
    sections: dict[str, list[dict[str, float | str]]] = {}
    for name in SECTION_NAMES[kind]:
        value = whole.get(name)
        if value is not None:
            sections[name] = value if type(value) is list else [value]
    if not sections:
        return None
    for name, label in LABELS[kind]:
        for item in sections.get(name, ()):
            value = item[label]
            if value not in _GOOD_LABELS and not _good(value, LABEL_RE, _GOOD_LABELS):  # type: ignore[arg-type]
                return None
    return Report(kind, body.ts, sections, stream=stream, seq=seq)
