"""A virtual PC's in-memory spool (``devtools/simulate/pc.py``, ``Spool``): bounded with the oldest
dropped and counted, drained oldest first, and what an earlier connection left unacknowledged sent
again first on the next one. The same spool over a real broker, collector and InfluxDB through a
whole server outage: ``tests/test_recovery.py``."""

from __future__ import annotations

from devtools.simulate.pc import Spool, Spooled


def report(seq: int, metrics: bool = True) -> Spooled:
    return Spooled(seq, "commune/v1/08/02473/pc-01/metrics", b"{}", 1000.0 + seq, metrics)


def test_a_full_spool_drops_its_oldest_reports_and_counts_them() -> None:
    spool = Spool(limit=3)
    for seq in range(1, 6):
        spool.add(report(seq, metrics=seq != 2))

    assert [r.seq for r in spool.outbox] == [3, 4, 5]
    assert spool.dropped == 2 and spool.metrics_dropped == 1  # report 2 was a probe
    assert spool.metrics_made == 4 and spool.metrics_pending() == 3


def test_reports_leave_oldest_first_and_stay_pending_until_acknowledged() -> None:
    spool = Spool()
    for seq in range(1, 6):
        spool.add(report(seq))

    sent = spool.take(2, connection=1)

    assert [r.seq for r in sent] == [1, 2] and spool.published == 2
    assert spool.pending() == 5 and spool.oldest_pending() == 1001.0
    spool.acknowledged(1, 2)
    assert spool.pending() == 3 and spool.oldest_pending() == 1003.0


def test_reports_unacknowledged_on_a_lost_connection_go_first_on_the_next() -> None:
    spool = Spool()
    for seq in range(1, 6):
        spool.add(report(seq))
    spool.take(3, connection=1)
    spool.acknowledged(2, 2)

    spool.requeue(connection=2)

    assert [r.seq for r in spool.outbox] == [1, 3, 4, 5] and spool.resent == 2
    assert [r.seq for r in spool.take(10, connection=2)] == [1, 3, 4, 5]
    spool.requeue(connection=2)  # nothing went out on an earlier connection now
    assert spool.resent == 2 and not spool.outbox


def test_a_wide_acknowledgement_releases_only_what_it_covers() -> None:
    spool = Spool()
    for seq in range(1, 4):
        spool.add(report(seq))
    spool.take(3, connection=1)

    spool.acknowledged(1, 2**40)  # a range far wider than what is pending

    assert spool.pending() == 0 and spool.oldest_pending() is None
