"""After a broker restart a province's PCs (real agents and virtual ones alike) come back spread
over seconds, not in one: the first retry is random, then the backoff doubles up to its cap."""

from __future__ import annotations

import itertools
import random
from collections import Counter

from agent.publisher import RECONNECT_MAX_S, RECONNECT_MIN_S, RECONNECT_SPREAD_S, reconnect_delays


def test_a_province_of_pcs_does_not_retry_in_the_same_second() -> None:
    rng = random.Random(16)
    first = [next(reconnect_delays(rng)) for _ in range(3700)]
    assert all(RECONNECT_MIN_S <= delay <= RECONNECT_SPREAD_S for delay in first)
    per_second = Counter(int(delay) for delay in first)
    # spread over every second of the window, none holding much more than its even share (1/9)
    assert set(per_second) == set(range(int(RECONNECT_MIN_S), int(RECONNECT_SPREAD_S)))
    assert max(per_second.values()) < 3700 * 0.15, per_second


def test_retries_double_from_the_random_start_up_to_the_cap() -> None:
    delays = list(itertools.islice(reconnect_delays(random.Random(1)), 12))
    assert delays[1] == 2 * delays[0] and delays[2] == 4 * delays[0]
    assert delays[-1] == RECONNECT_MAX_S and max(delays) == RECONNECT_MAX_S
