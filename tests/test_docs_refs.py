"""The generated references under docs/en/reference/ match the code (issue 30): each page is rendered
again in memory from the config models, the OpenAPI document and the wire contract, and compared."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from agent.config import SECTIONS
from collector.config import CollectorConfig
from common import wire
from devtools import docs_refs

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def rendered() -> dict[Path, str]:
    return docs_refs.render_all()


def test_every_committed_reference_matches_the_code(rendered: dict[Path, str]) -> None:
    stale = [str(path) for path, text in rendered.items() if (REPO / path).read_text(encoding="utf-8") != text]
    assert stale == [], f"out of date, run `make docs-refs` and commit: {', '.join(stale)}"


def test_the_configuration_reference_names_every_option_with_its_default(rendered: dict[Path, str]) -> None:
    page = rendered[docs_refs.OUT / "configuration.md"]
    for section, cls in SECTIONS.items():
        assert f"### `[{section}]`" in page
        for spec in dataclasses.fields(cls):
            assert f"| `{spec.name}` |" in page, f"agent [{section}] {spec.name}"
    collector = page[page.index("## Collector") :]
    for section, field in CollectorConfig.model_fields.items():
        assert field.annotation is not None
        assert f"`COMMUNE_COLLECTOR_{section.upper()}__<OPTION>`" in collector
        part = collector[collector.index(f"### `[{section}]`") :]
        for key in field.annotation.model_fields:
            assert f"| `{key}` |" in part, f"collector [{section}] {key}"
    assert "| `port` | integer | `8080` | >= 0, <= 65535 |" in page  # [http] port: default and bounds
    assert "| `interval_s` | number | `30.0` | Seconds between metric reports" in page  # the example's comment


def test_the_http_reference_has_every_route_of_the_openapi_document(rendered: dict[Path, str]) -> None:
    page = rendered[docs_refs.OUT / "http-api.md"]
    document = docs_refs.openapi_document()
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"### `{method.upper()} {path}`" in page
    assert "POST /api/v1/exclusions" in page and "an admin token" in page


def test_the_mqtt_and_influxdb_references_have_every_section_of_the_contract(rendered: dict[Path, str]) -> None:
    mqtt = rendered[docs_refs.OUT / "mqtt.md"]
    influx = rendered[docs_refs.OUT / "influxdb.md"]
    for kind, sections in wire.SECTIONS_BY_KIND.items():
        assert kind in mqtt
        for spec in sections.values():
            assert f"| `{spec.measurement}` |" in influx
            for field in spec.fields:
                assert f"| `{field}` |" in mqtt and f"`{field}`" in influx
    for measurement in ("agent", "commune", "equipment", "alert", "outage"):
        assert f"| `{measurement}` | `collector/" in influx, f"the collector's own {measurement} points"


def test_check_says_which_page_drifted_and_a_regeneration_fixes_it(tmp_path: Path) -> None:
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    assert docs_refs.main(["--check", "--root", str(tmp_path)]) == 0
    page = tmp_path / docs_refs.OUT / "configuration.md"
    page.write_text(page.read_text().replace("`8080`", "`8081`"))
    assert docs_refs.main(["--check", "--root", str(tmp_path)]) == 1
    assert docs_refs.main(["--root", str(tmp_path)]) == 0
    assert docs_refs.main(["--check", "--root", str(tmp_path)]) == 0
    assert "`8080`" in page.read_text()
