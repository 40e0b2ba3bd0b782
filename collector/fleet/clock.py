"""Each PC's clock offset, learned from when its reports arrive, so that "backlog" is judged on the
report's true age and not on how wrong the PC's clock is.

Commune PCs' clocks are often minutes off. A report's lag (arrival time minus its ``ts``) is the
PC's clock offset plus how long the report took to come (nothing when it is live, the time it
waited in a spool or a broker when it is backlog). No report comes before it is measured, so no
lag is below the offset: the smallest lag seen is the best bound on it (NTP's minimum filter).
``[ingest] backlog_after_s`` is then applied to ``lag - offset``.

The offset moves down at once (a smaller lag proves the clock is at most that far behind: the
judgement only gets stricter). It moves up only to a lag that has held, within ``clock_jitter_s``,
for ``clock_settle_s`` of arrivals: live reports give the same lag report after report, while a
backlog draining (from a spool or from a broker that held it) gives lags that shrink as it goes,
so old reports never teach the collector that they are fresh. A lowest lag not seen again for
``clock_settle_s`` (the PC's clock was set back) is forgotten and learned anew the same way.

The state (``ClockState``) is kept in the PC's ``HostFacts`` and saved with them, so a collector
restart keeps what it learned. This module only computes; ``state.py`` keeps the facts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ClockState:
    """What is known of one PC's clock (seconds; offset > 0: the PC's clock is behind)."""

    offset_s: float = 0.0  # the offset the backlog judgement uses; 0 until learned
    low_s: float | None = None  # the lowest lag of the current candidate
    low_since: float = 0.0  # arrival time from which ``low_s`` has held
    low_seen: float = 0.0  # last arrival with a lag within the jitter of ``low_s``


def learn(clock: ClockState, lag: float, now: float, settle_s: float, jitter_s: float) -> None:
    """Fold one accepted report's lag (``now`` minus its ``ts``) into its PC's clock."""
    if clock.low_s is None or now - clock.low_seen > settle_s:
        clock.low_s, clock.low_since, clock.low_seen = lag, now, now  # a new candidate
    elif lag < clock.low_s - jitter_s:  # the lag shrinks: a drain, or a clock set forward
        clock.low_s, clock.low_since, clock.low_seen = lag, now, now
    elif lag <= clock.low_s + jitter_s:  # the same lag again
        clock.low_s, clock.low_seen = min(clock.low_s, lag), now
    if clock.low_s < clock.offset_s or (now - clock.low_since >= settle_s and clock.low_seen == now):
        clock.offset_s = clock.low_s


def age(lag: float, clock: ClockState | None) -> float:
    """A report's age corrected for its PC's clock: how long ago it was measured."""
    return lag - (clock.offset_s if clock is not None else 0.0)
