"""The writer's backlog (collector/ingest/writer.py, ``Backlog``): messages kept whole and in
order, a taker woken once a batch's worth is waiting (not by every message), the bound holding
producers back. Pure: threads, no services."""

from __future__ import annotations

import threading

from collector.ingest.writer import Backlog
from devtools.localstack import wait_until


def waiting(backlog: Backlog) -> int:
    """Threads waiting on the backlog now (its condition's waiters)."""
    return len(backlog._changed._waiters)  # type: ignore[attr-defined]


def test_a_taker_waiting_for_a_batch_gets_it_whole_not_the_first_message() -> None:
    backlog = Backlog(max_points=1000)
    taken: list[list[str]] = []
    taker = threading.Thread(target=lambda: taken.append(backlog.take(8, 60.0)[0]))
    taker.start()
    wait_until(lambda: waiting(backlog) == 1, 10, "the taker waiting")
    for n in range(4):  # two lines a message: the fourth makes the batch
        backlog.put([f"m{n}a", f"m{n}b"], None)
        if n < 3:
            assert waiting(backlog) == 1, f"woken by message {n} of a batch of 4"
    taker.join(10)
    assert taken == [["m0a", "m0b", "m1a", "m1b", "m2a", "m2b", "m3a", "m3b"]]


def test_after_its_timeout_a_taker_gets_what_waits_with_each_ack_in_order() -> None:
    backlog = Backlog(max_points=1000)
    acked: list[int] = []
    for n in range(3):
        backlog.put([f"line {n}"], lambda n=n: acked.append(n))  # type: ignore[misc]
    lines, acks = backlog.take(100, 0.05)
    for ack in acks:
        ack()
    assert lines == ["line 0", "line 1", "line 2"]
    assert acked == [0, 1, 2]
    assert backlog.points() == 0


def test_a_message_is_never_split_and_the_bound_holds_producers_back() -> None:
    backlog = Backlog(max_points=4)
    backlog.put(["a1", "a2", "a3"], None)
    backlog.put(["b1", "b2"], None)  # over the bound now: the next put waits
    producer = threading.Thread(target=lambda: backlog.put(["c1"], None))
    producer.start()
    wait_until(lambda: waiting(backlog) == 1, 10, "the producer held back")
    assert backlog.take(4, 0.0)[0] == ["a1", "a2", "a3"]  # b would overfill the batch: left whole
    producer.join(10)
    assert not producer.is_alive()
    assert backlog.take(4, 0.0)[0] == ["b1", "b2", "c1"]


def test_a_batch_larger_than_the_queue_s_bound_is_taken_once_the_bound_is_reached() -> None:
    """``[writer] batch_size`` may exceed ``queue_max_points``: the taker must not wait for more
    points than producers are allowed to queue (it would wait out its timeout on every batch)."""
    backlog = Backlog(max_points=4)
    taken: list[list[str]] = []
    taker = threading.Thread(target=lambda: taken.append(backlog.take(100, 600.0)[0]), daemon=True)
    taker.start()
    wait_until(lambda: waiting(backlog) == 1, 10, "the taker waiting")
    for n in range(4):
        backlog.put([f"line {n}"], None)
    taker.join(10)
    assert not taker.is_alive(), "the taker still waits for 100 points behind a bound of 4"
    assert taken == [["line 0", "line 1", "line 2", "line 3"]]
