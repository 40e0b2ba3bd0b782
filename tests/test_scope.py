"""Scoped viewer tokens, the pure part: what an area or a commune scope sees, which scopes a token
may be given (and the one sentence for one it may not), and the token rows a request may use."""

from __future__ import annotations

import pytest
from fastapi import HTTPException
from pydantic import ValidationError

from collector.config import ApiTokenSettings
from collector.http.auth import Token, checked_scope, usable
from collector.http.scope import WHOLE, Scope, Where, hidden, whole_province

COMMUNE = Scope("commune", "02473", frozenset({"02473"}), "yen-son")  # 02536 is in yen-son too, 02215 not
AREA = Scope("area", "yen-son", frozenset({"02473", "02536"}), "yen-son")


def test_a_commune_scope_sees_its_commune_and_the_area_holding_it_and_nothing_of_the_province() -> None:
    assert COMMUNE.sees(Where("02473")) and not COMMUNE.sees(Where("02536"))
    assert COMMUNE.sees(Where(area="yen-son")) and not COMMUNE.sees(Where(area="minh-xuan"))
    assert not COMMUNE.sees(Where())  # a thing of the whole province
    assert COMMUNE.communes() == frozenset({"02473"})
    with pytest.raises(HTTPException) as refused:
        COMMUNE.area()  # an area's report ranks its other communes
    assert refused.value.status_code == 404


def test_an_area_scope_sees_its_communes_and_itself() -> None:
    assert AREA.sees(Where("02473")) and AREA.sees(Where("02536")) and not AREA.sees(Where("02215"))
    assert AREA.sees(Where(area="yen-son")) and not AREA.sees(Where(area="minh-xuan")) and not AREA.sees(Where())
    assert AREA.communes() == frozenset({"02473", "02536"}) and AREA.area() == "yen-son"


def test_the_whole_province_sees_everything() -> None:
    assert WHOLE.sees(Where()) and WHOLE.sees(Where("02215")) and WHOLE.communes() is None and WHOLE.area() is None


def test_a_route_of_the_whole_province_is_hidden_from_any_scoped_token() -> None:
    whole_province(WHOLE)
    for scope in (COMMUNE, AREA):
        with pytest.raises(HTTPException) as refused:
            whole_province(scope)
        assert refused.value.status_code == 404 and refused.value.detail == hidden().detail


def test_only_a_viewer_is_scoped_to_one_known_area_or_official_commune() -> None:
    assert checked_scope("viewer", "", "02473", []) == "commune:02473"
    assert checked_scope("viewer", "yen-son", "", ["yen-son"]) == "area:yen-son"
    assert checked_scope("admin", "", "", []) == ""
    for role, area, commune, said in (
        ("admin", "", "02473", "only a viewer token"),
        ("viewer", "yen-son", "02473", "not both"),
        ("viewer", "", "99999", "'99999' is not an official commune code"),
        ("viewer", "son-la", "", "'son-la' is not in the registry"),
    ):
        with pytest.raises(ValueError, match=said):
            checked_scope(role, area, commune, ["yen-son"])  # type: ignore[arg-type]


def test_a_stored_row_scoping_an_admin_or_naming_no_place_is_not_used() -> None:
    assert usable("viewer", "commune:02473") and usable("admin", "") and usable("viewer", "")
    assert not usable("admin", "commune:02473") and not usable("viewer", "district:1") and not usable("root", "")


def test_a_config_token_carries_one_scope_on_a_viewer() -> None:
    sha = "0" * 64
    assert ApiTokenSettings(name="xa", role="viewer", sha256=sha, commune="02473").scope() == "commune:02473"
    assert ApiTokenSettings(name="kv", role="viewer", sha256=sha, area="yen-son").scope() == "area:yen-son"
    assert ApiTokenSettings(name="ops", role="admin", sha256=sha).scope() == ""
    for bad in ({"role": "admin", "commune": "02473"}, {"role": "viewer", "commune": "02473", "area": "yen-son"},
                {"role": "viewer", "commune": "2473"}):  # fmt: skip
        with pytest.raises(ValidationError):
            ApiTokenSettings(name="x", sha256=sha, **bad)  # type: ignore[arg-type]
    assert Token("a", "viewer", sha) == Token("a", "viewer", sha, "")  # tokens made before scopes see everything
