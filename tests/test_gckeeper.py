"""The garbage-collection keeper (issue 32): each tick's survivors are frozen out of full collections
after the young generations' garbage is collected; what was frozen alive and died since is freed by
the hourly full collection (and one when the fleet grows by a quarter); every collection's pause is
counted on /metrics per generation; stopping gives the process its collector back as it was.
And a PC's facts have no ``__dict__`` (slots), yet save and load as before."""

from __future__ import annotations

import gc
import json
import weakref
from collections import deque

from collector.fleet import persistence
from collector.fleet.facts import HostFacts
from collector.gckeeper import FREEZE_MIN_HOSTS, FULL_EVERY_S, OLDEST_THRESHOLD, GcKeeper
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


def frozen(thing: object) -> bool:
    """Whether ``thing`` is out of every collection's scan (the permanent generation)."""
    return all(o is not thing for o in gc.get_objects())


def test_the_keeper_freezes_each_ticks_survivors_collects_in_full_hourly_and_gives_everything_back() -> None:
    metrics = SelfMetrics()
    keeper = GcKeeper(metrics.gc_pause_seconds)
    before_thresholds, before_frozen = gc.get_threshold(), gc.get_freeze_count()
    keeper.start()
    try:
        assert gc.get_threshold() == (before_thresholds[0], before_thresholds[1], OLDEST_THRESHOLD)
        assert keeper.after_tick(FREEZE_MIN_HOSTS - 1, now=0.0) == ""  # a small fleet: Python's own policy
        assert gc.get_freeze_count() == before_frozen
        garbage = Cycle()
        dead = weakref.ref(garbage)
        del garbage
        kept = HostFacts(reboots=[1.0])
        assert keeper.after_tick(FREEZE_MIN_HOSTS, now=0.0) == "full"
        assert dead() is None  # collected before the freeze, not frozen
        assert frozen(kept.reboots)
        # a tick later: the young generations' garbage is collected, their survivors frozen
        young_garbage = Cycle()
        young_dead = weakref.ref(young_garbage)
        del young_garbage
        later = HostFacts(gaps=[2.0])
        alive = Cycle()  # alive at the tick, garbage after it: frozen, so only a full collection frees it
        alive_then = weakref.ref(alive)
        assert keeper.after_tick(FREEZE_MIN_HOSTS, now=60.0) == "young"
        assert young_dead() is None and frozen(later.gaps) and frozen(alive)
        del alive
        gc.collect()  # Python's own full collections no longer scan what is frozen
        assert alive_then() is not None
        assert keeper.after_tick(FREEZE_MIN_HOSTS, now=FULL_EVERY_S - 1) == "young"
        assert keeper.after_tick(FREEZE_MIN_HOSTS, now=FULL_EVERY_S) == "full"  # an hour after the last full one
        assert alive_then() is None and frozen(kept.reboots) and frozen(later.gaps)
        assert keeper.after_tick(int(FREEZE_MIN_HOSTS * 1.25) - 1, now=FULL_EVERY_S + 5) == "young"
        assert keeper.after_tick(int(FREEZE_MIN_HOSTS * 1.25), now=FULL_EVERY_S + 10) == "full"  # grew a quarter
        assert pause(metrics, 1) > 0 and pause(metrics, 2) > 0  # the keeper's collections were timed
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
