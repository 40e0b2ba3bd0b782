"""Makes free-form names (mount points, sensor names) safe to use as wire labels."""

from __future__ import annotations

import re

from common.wire import LABEL_RE

_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/-]+")


def to_label(name: str) -> str:
    """``name`` with unsafe characters replaced by ``_``, cut to 64 chars; never empty."""
    label = _UNSAFE.sub("_", name).strip("_")[:64] or "unnamed"
    assert LABEL_RE.match(label), label
    return label
