"""The one vocabulary: every code people see has Vietnamese and English words, English texts show
no bare code, and the dashboard builder reads its words without loading the runtime fleet."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from collector import vocabulary as words
from collector.alerting.conditions import RULES, SEVERITIES
from collector.fleet import rules
from collector.fleet.rules import CommuneStatus, HostStatus
from collector.registry.registry import HostKey

CODES = {**words.LINE_REASONS, **words.DEGRADED_REASONS, **words.RULES, **words.SEVERITIES}


def test_every_code_has_vietnamese_and_english_words_and_neither_is_the_code() -> None:
    tables = [words.LINE_REASONS, words.DEGRADED_REASONS, words.RULES, words.SEVERITIES,
              {code: state.words for code, state in words.LINE_STATES.items()}]  # fmt: skip
    for table in tables:
        for code, said in table.items():
            assert said.vi and said.en, code
            assert code not in (said.vi, said.en), code
    assert set(RULES) == set(words.RULES) == set(words.RULE_SEVERITY) == set(words.SUMMARIES)
    assert set(words.RULE_SEVERITY.values()) <= set(SEVERITIES)


def test_line_state_codes_and_severities_are_distinct_and_down_is_the_worst() -> None:
    states = words.LINE_STATES
    assert sorted(s.code for s in states.values()) == list(range(len(states)))
    assert sorted(s.severity for s in states.values()) == list(range(len(states)))
    assert max(states, key=lambda k: states[k].severity) == "down" and states["up"].severity == 0


def bare_codes(text: str) -> list[str]:
    """Codes in ``text`` that are not inside the brackets that follow their words."""
    outside = re.sub(r"\([a-z_]+\)", "", text)
    return [code for code in CODES if re.search(rf"\b{code}\b", outside)]


def test_english_alert_summaries_show_words_and_never_a_bare_code() -> None:
    key = HostKey("08", "02473", "pc-1")
    every = tuple(words.DEGRADED_REASONS)
    hosts = [HostStatus(key, "yen-son", True, 995.0, every, 0.0), HostStatus(HostKey("08", "02536", "pc-2"),
             "son-duong", False, 600.0, (), 0.0)]  # fmt: skip
    communes = [
        CommuneStatus("08", "a", code, 1, 1, 0, state, 100.0, 0.0, (reason,), reasons_vi=("x",))
        for code, state, reason in (("02473", "down", "all_hosts_offline"), ("02536", "down", "wan_unreachable"),
                                    ("00691", "unused", "no_agent"), ("00721", "unused", "other_uplink"),
                                    ("02215", "unused", "low_traffic"), ("02476", "degraded", "loss 9.0%, rtt 10 ms"))
    ]  # fmt: skip
    found = rules.conditions(hosts, communes)
    assert {c.rule for c in found} == {"line_down", "line_unused", "line_degraded", "host_degraded"}
    for condition in found:
        assert bare_codes(condition.summary_en) == [], condition.summary_en
    (degraded,) = [c for c in found if c.rule == "host_degraded"]
    assert "(" not in degraded.summary_en and "disk nearly full" in degraded.summary_en
    assert words.degraded_reasons_en_with_codes(("disk_full",)) == "disk nearly full (disk_full)"


@pytest.mark.services  # runs a fresh Python to see what the builder imports
def test_the_dashboard_builder_loads_no_runtime_fleet_or_service_module() -> None:
    runtime = "('collector.fleet', 'collector.service')"
    probe = ("import sys, collector.grafana.dashboards, collector.grafana.provisioning; "
             f"print(sorted(m for m in sys.modules if m.startswith({runtime})))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
