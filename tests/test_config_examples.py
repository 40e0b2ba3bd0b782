"""The example configs are the documentation: each loads, and names every option of every section
(set, or commented out with its default)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from realservices import REPO

from agent.config import SECTIONS
from collector.config import CollectorConfig, load_config

EXAMPLE = REPO / "config" / "collector.example.toml"


def documented_keys(path: Path = EXAMPLE) -> dict[str, set[str]]:
    sections: dict[str, set[str]] = {}
    current = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        header = re.match(r"^\[(\w+)\]", line)
        if header:
            current = header[1]
            sections.setdefault(current, set())
            continue
        key = re.match(r"^#?\s?(\w+) = ", line)
        if key and current:
            sections[current].add(key[1])
    return sections


def test_the_example_loads() -> None:
    load_config(EXAMPLE)


def test_the_example_documents_every_option_of_every_section() -> None:
    documented = documented_keys()
    missing = {
        section: sorted(set(model.model_fields) - documented.get(section, set()))
        for section, model in ((name, field.annotation) for name, field in CollectorConfig.model_fields.items())
        if model is not None and hasattr(model, "model_fields")
    }
    assert {section: keys for section, keys in missing.items() if keys} == {}


def test_the_agent_example_documents_every_option_of_every_section() -> None:
    documented = documented_keys(REPO / "config" / "agent.example.toml")
    missing = {
        section: sorted({f.name for f in dataclasses.fields(cls)} - documented.get(section, set()))
        for section, cls in SECTIONS.items()
    }
    assert {section: keys for section, keys in missing.items() if keys} == {}
