"""The official list of provinces and communes (package ``vietnam-provinces``), as lookups.

Codes on the wire are zero-padded strings: province "08", commune "02473".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from vietnam_provinces import Province, Ward


@dataclass(frozen=True)
class Commune:
    code: str
    name: str
    province_code: str


@cache
def _communes() -> dict[str, Commune]:
    return {
        f"{int(ward.code):05d}": Commune(f"{int(ward.code):05d}", ward.name, f"{int(ward.province_code):02d}")
        for ward in Ward.iter_all()
    }


@cache
def _provinces() -> dict[str, str]:
    return {f"{int(p.code):02d}": p.name for p in Province.iter_all()}


def commune(code: str) -> Commune | None:
    return _communes().get(code)


def commune_name(code: str) -> str | None:
    """The official name of a commune (``Xã Yên Sơn``), None when the code is not an official one."""
    found = _communes().get(code)
    return found.name if found else None


def display_name(code: str) -> str:
    """What people are shown for a commune: its official name, or its code when it has none."""
    return commune_name(code) or code


def province_name(code: str) -> str | None:
    return _provinces().get(code)


def is_official(province_code: str, commune_code: str) -> bool:
    """True when the commune exists and belongs to that province."""
    found = _communes().get(commune_code)
    return found is not None and found.province_code == province_code


def communes_of(province_code: str) -> list[Commune]:
    return sorted((c for c in _communes().values() if c.province_code == province_code), key=lambda c: c.code)


def every_commune() -> list[Commune]:
    """Every commune of the official list (3,321), by province then code."""
    return sorted(_communes().values(), key=lambda c: (c.province_code, c.code))
