"""The garbage-collection keeper (issue 32): the fleet's long-lived objects are frozen out of full
collections when the fleet grows by a quarter, never with garbage; every collection's pause is
counted on /metrics per generation; stopping gives the process its collector back as it was.
And a PC's facts have no ``__dict__`` (slots), yet save and load as before."""

from __future__ import annotations

import gc
import json
import weakref
from collections import deque

from collector.fleet import persistence
from collector.fleet.facts import HostFacts
from collector.gckeeper import FREEZE_MIN_HOSTS, OLDEST_THRESHOLD, GcKeeper
from collector.registry.registry import HostKey
from collector.selfmetrics import SelfMetrics


def pause(metrics: SelfMetrics, generation: int) -> float:
    value = metrics.registry.get_sample_value(
        "commune_collector_gc_pause_seconds_total", {"generation": str(generation)}
    )
    assert value is not None
    return value


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_the_keeper_freezes_as_the_fleet_grows_and_gives_everything_back_when_stopped() -> None:
    metrics = SelfMetrics()
    keeper = GcKeeper(metrics.gc_pause_seconds)
    before_thresholds, before_frozen = gc.get_threshold(), gc.get_freeze_count()
    keeper.start()
    try:
        assert gc.get_threshold() == (before_thresholds[0], before_thresholds[1], OLDEST_THRESHOLD)
        assert keeper.after_tick(FREEZE_MIN_HOSTS - 1) is False
        assert gc.get_freeze_count() == before_frozen
        garbage = Cycle()
        dead = weakref.ref(garbage)
        del garbage
        kept = HostFacts(reboots=[1.0])
        assert keeper.after_tick(FREEZE_MIN_HOSTS) is True
        assert dead() is None  # collected before the freeze, not frozen for ever
        assert gc.get_freeze_count() > before_frozen
        assert all(o is not kept.reboots for o in gc.get_objects())  # frozen: full collections no longer scan it
        assert keeper.after_tick(int(FREEZE_MIN_HOSTS * 1.25) - 1) is False
        assert keeper.after_tick(int(FREEZE_MIN_HOSTS * 1.25)) is True
        assert pause(metrics, 2) > 0  # the freezes' full collections were timed
    finally:
        keeper.stop()
    assert gc.get_threshold() == before_thresholds
    assert gc.get_freeze_count() == 0
    counted = pause(metrics, 2)
    gc.collect()
    assert pause(metrics, 2) == counted  # stopped: no longer counting


def test_a_running_keeper_counts_every_generations_pauses() -> None:
    metrics = SelfMetrics()
    keeper = GcKeeper(metrics.gc_pause_seconds)
    keeper.start()
    try:
        for generation in range(3):
            gc.collect(generation)
    finally:
        keeper.stop()
    assert all(pause(metrics, g) > 0 for g in range(3))
    assert "commune_collector_gc_pause_seconds_total" in metrics.render().decode()


def test_a_pcs_facts_have_slots_and_save_and_load_as_before() -> None:
    facts = HostFacts(last_report=5.0, reboots=[1.0, 2.0], traffic_by_day={"2026-12-05": 9.0}, uplink="eth0")
    facts.samples = deque([(1.0, 2.0, 30.0)])
    facts.clock.offset_s, facts.clock.low_s = 3.0, 4.0
    assert not hasattr(facts, "__dict__") and not hasattr(facts.clock, "__dict__")
    ((host, text),) = persistence.rows([(HostKey("08", "02473", "pc-1"), facts)])
    data = json.loads(text)
    assert host == "08/02473/pc-1"
    assert list(data) == list(persistence.FACT_NAMES)  # every field, in the order the state file had them
    assert data["clock"] == {"offset_s": 3.0, "low_s": 4.0, "low_since": 0.0, "low_seen": 0.0}
    assert data["samples"] == [[1.0, 2.0, 30.0]]
    assert persistence.from_json(data) == facts
