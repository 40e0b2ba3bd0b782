"""Agent configuration: the example file loads, and every mistake gets a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
from realservices import REPO

from agent.config import ConfigError, config_from_dict, load_config


def test_example_config_loads_with_documented_defaults() -> None:
    config = load_config(REPO / "config" / "agent.example.toml")
    assert config.identity.province == "08" and config.identity.commune == "02473"
    assert config.identity.host  # defaults to the hostname
    assert config.collect.interval_s == 30.0
    assert config.spool.max_bytes == 50 * 1024 * 1024


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"identity": {"province": "8", "commune": "02473"}}, "two-digit"),
        ({"identity": {"province": "08", "commune": "2473"}}, "five-digit"),
        ({"identity": {"province": "08", "commune": "02473", "host": "pc 01"}}, "may only hold"),
        ({"identity": {"province": "08", "commune": "02473"}, "collect": {"interval_s": 0.5}}, "at least 1"),
        ({"identity": {"province": "08", "commune": "02473"}, "mqtt": {"port": "1883"}}, "should be a int"),
        ({"identity": {"province": "08", "commune": "02473"}, "mqtt": {"hots": "x"}}, "not a known option"),
        ({"identity": {"province": "08", "commune": "02473"}, "extra": {}}, "unknown section"),
    ],
)
def test_mistakes_are_reported_with_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(raw)


def test_password_is_not_in_repr() -> None:
    config = config_from_dict({"identity": {"province": "08", "commune": "02473"}, "mqtt": {"password": "s3cret"}})
    assert "s3cret" not in repr(config)


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent\.example\.toml"):
        load_config(tmp_path / "nope.toml")
