"""The collector's receipts tell a re-sent report from a new one, also after a restart, and owe
each stored report exactly one acknowledgement."""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from realservices import Influxd, Mosquitto, wait_until

from collector.config import FleetSettings, InfluxSettings, IngestSettings, MqttSettings
from collector.fleet.state import FleetState
from collector.ingest.acks import ROUND, Acknowledger
from collector.ingest.checks import Accepted, Ingestor
from collector.ingest.consumer import Consumer
from collector.ingest.diskbuffer import DiskBuffer
from collector.ingest.influx import InfluxClient
from collector.ingest.receipts import MAX_RANGES, Receipt, Receipts, SeqSet, ranges_text
from collector.ingest.writer import BatchWriter
from collector.registry.registry import HostKey, Registry
from collector.selfmetrics import SelfMetrics
from collector.store import Store
from common.wire import decode_ack, encode, report_topic, with_sequence

HOST = HostKey("08", "02473", "pc-01")
T0 = time.time() - 3600


def test_seq_sets_merge_adjacent_numbers_into_ranges() -> None:
    seqs = SeqSet()
    for seq in (5, 3, 4, 10, 1, 11, 12):
        assert seqs.add(seq)
    assert not seqs.add(4)
    assert seqs.ranges() == [(1, 1), (3, 5), (10, 12)]
    seqs.add(2)
    assert seqs.ranges() == [(1, 5), (10, 12)]
    assert 11 in seqs and 6 not in seqs and 0 not in seqs


def test_a_seq_set_stays_bounded_by_closing_its_oldest_gaps() -> None:
    seqs = SeqSet()
    for seq in range(1, 2 * (MAX_RANGES + 10), 2):  # every other number: one range each
        seqs.add(seq)
    assert len(seqs.ranges()) == MAX_RANGES
    assert seqs.ranges()[-1] == (2 * (MAX_RANGES + 10) - 1,) * 2
    assert 2 in seqs  # an old gap, closed


def test_a_report_claimed_twice_is_a_duplicate_and_each_store_is_acknowledged(tmp_path: Path) -> None:
    receipts = Receipts(tmp_path / "r.sqlite", retention_s=3600)
    first = Receipt(HOST, "0123abcd", 1)
    assert receipts.claim(first)
    assert not receipts.claim(first)
    receipts.stored(first)
    receipts.stored(Receipt(HOST, "0123abcd", 2))
    assert receipts.take_acks() == [(HOST, "0123abcd", [(1, 2)])]
    assert receipts.take_acks() == []
    receipts.stored(first)  # the re-sent copy, stored again
    assert receipts.take_acks(min_gap_s=3600) == []  # this host was acknowledged a moment ago
    assert receipts.take_acks() == [(HOST, "0123abcd", [(1, 1)])]


def test_stored_reports_are_recognised_after_a_restart(tmp_path: Path) -> None:
    receipts = Receipts(tmp_path / "r.sqlite", retention_s=3600)
    for seq in (1, 2, 3):
        receipt = Receipt(HOST, "0123abcd", seq)
        receipts.claim(receipt)
        receipts.stored(receipt)
    receipts.claim(Receipt(HOST, "0123abcd", 4))  # taken, never stored: the process dies here
    receipts.commit()
    # no close(): as after SIGKILL
    restarted = Receipts(tmp_path / "r.sqlite", retention_s=3600)
    assert not restarted.claim(Receipt(HOST, "0123abcd", 2))
    assert restarted.claim(Receipt(HOST, "0123abcd", 4))
    assert restarted.claim(Receipt(HOST, "ffff0000", 2))  # a new spool numbers from the start


def test_a_hello_owes_an_empty_acknowledgement(tmp_path: Path) -> None:
    receipts = Receipts(tmp_path / "r.sqlite", retention_s=3600)
    receipts.hello(HOST, "0123abcd")
    assert receipts.take_acks() == [(HOST, "0123abcd", [])]


def test_streams_not_heard_of_for_the_retention_are_forgotten(tmp_path: Path) -> None:
    receipts = Receipts(tmp_path / "r.sqlite", retention_s=60)
    receipt = Receipt(HOST, "0123abcd", 1)
    receipts.claim(receipt)
    receipts.stored(receipt)
    receipts.commit()
    receipts.close()
    later = Receipts(tmp_path / "r.sqlite", retention_s=60)
    assert later.streams() == 1
    later.close()
    with sqlite3.connect(tmp_path / "r.sqlite") as db:
        db.execute("UPDATE stored SET touched = ?", (time.time() - 120,))
    assert Receipts(tmp_path / "r.sqlite", retention_s=60).streams() == 0


def test_a_re_sent_report_is_counted_and_never_reaches_fleet_state(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite")
    registry = Registry(store, "unassigned")
    metrics = SelfMetrics()
    fleet = FleetState(store, registry, FleetSettings(restart_grace_s=0), started_at=T0 - 100)
    ingestor = Ingestor(registry, metrics, IngestSettings(max_age_s=86400), Receipts(tmp_path / "r.sqlite", 86400))
    seen: list[Accepted] = []
    ingestor.observers += [fleet.observe, seen.append]
    topic = report_topic("08", "02473", "pc-01", "metrics")

    def numbered(seq: int, cpu: float) -> bytes:
        body = {"v": 1, "ts": int(T0 + 30 * seq), "system": {"cpu_percent": cpu}, "agent": {"interval_s": 30}}
        return with_sequence(encode(body), "0123abcd", seq)

    for seq in (1, 2, 3):
        handled = ingestor.handle_message(topic, numbered(seq, 10.0 * seq), T0 + 30 * seq)
        assert handled.lines and handled.receipt == Receipt(HOST, "0123abcd", seq)
    late = ingestor.handle_message(topic, numbered(1, 10.0), T0 + 400)  # re-sent long after: would be a gap
    assert late.lines and late.receipt == Receipt(HOST, "0123abcd", 1)  # the same point again, acknowledged again
    assert metrics.registry.get_sample_value("commune_collector_reports_duplicate_total") == 1
    assert [a.report.seq for a in seen] == [1, 2, 3]
    facts = fleet.facts[HOST]
    assert facts.last_report == T0 + 90 and facts.cpu_percent == 30.0 and facts.gaps == []


def test_a_refused_numbered_report_is_acknowledged_so_its_agent_stops_sending_it(tmp_path: Path) -> None:
    registry = Registry(Store(tmp_path / "state.sqlite"), "unassigned")
    receipts = Receipts(tmp_path / "r.sqlite", 86400)
    ingestor = Ingestor(registry, SelfMetrics(), IngestSettings(), receipts)
    payload = with_sequence(encode({"v": 1, "ts": int(time.time()), "system": {"cpu_percent": "busy"}}), "0123abcd", 7)
    assert ingestor.handle_message(report_topic("08", "02473", "pc-01", "metrics"), payload, time.time()).lines == []
    assert receipts.take_acks() == [(HOST, "0123abcd", [(7, 7)])]


def test_receipts_that_cannot_be_written_report_it_and_still_tell_duplicates(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    failures: list[str] = []
    receipts = Receipts(blocker / "r.sqlite", 3600, lambda exc, doing: failures.append(doing))
    assert failures == ["open"]
    receipt = Receipt(HOST, "0123abcd", 1)
    assert receipts.claim(receipt) and not receipts.claim(receipt)
    receipts.stored(receipt)
    receipts.commit()
    assert receipts.take_acks() == [(HOST, "0123abcd", [(1, 1)])]


class QueueingClient:
    """``Consumer.publish_command``'s contract: takes ``room`` messages, then refuses (queue full)."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.published: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes) -> bool:
        if not self.room:
            return False
        self.room -= 1
        self.published.append((topic, payload))
        return True


def test_acknowledgements_the_mqtt_client_refuses_stay_owed_for_the_next_round(tmp_path: Path) -> None:
    """A full MQTT queue refuses acks (``Consumer.publish_command`` False): the refused one and
    the rest of the round are owed again, then sent merged with what was stored since."""
    receipts = Receipts(tmp_path / "r.sqlite", retention_s=3600)
    hosts = [HostKey("08", "02473", f"pc-{n:02d}") for n in range(5)]
    for host in hosts:
        for seq in (1, 2):
            receipts.stored(Receipt(host, "0123abcd", seq))
    client = QueueingClient(2)  # the client takes two messages, then its queue is full
    metrics = SelfMetrics()
    acknowledger = Acknowledger(receipts, client.publish, metrics, interval_s=1.0)
    assert acknowledger.flush() == 2
    assert metrics.acks_failed._value.get() == 3
    receipts.stored(Receipt(hosts[4], "0123abcd", 3))
    client.room = 10
    assert acknowledger.flush() == 3
    acks = {topic.split("/")[4]: decode_ack(payload) for topic, payload in client.published}
    assert sorted(acks) == [host.host for host in hosts]
    assert all(ack.ranges == ((1, 2),) for name, ack in acks.items() if name != "pc-04")
    assert acks["pc-04"].ranges == ((1, 3),)
    assert receipts.take_acks() == []


@given(st.lists(st.integers(min_value=1, max_value=300), max_size=200))
def test_a_seq_set_holds_exactly_the_numbers_added_in_any_order(numbers: list[int]) -> None:
    """Next numbers in order extend the last range in place; any other goes the long way: both
    agree with a plain set (well below MAX_RANGES, where no gap is closed)."""
    seqs, plain = SeqSet(), set()
    for seq in numbers:
        assert seqs.add(seq) == (seq not in plain)
        plain.add(seq)
    assert all(seq in seqs for seq in plain) and not any(seq in seqs for seq in set(range(302)) - plain)
    ranges = seqs.ranges()
    assert all(last + 1 < first for (_f, last), (first, _l) in itertools.pairwise(ranges))
    assert [tuple(pair) for pair in json.loads(ranges_text(seqs))] == ranges  # the stored column
    assert SeqSet.of_sorted(ranges).ranges() == ranges


def test_a_batch_marked_stored_at_once_is_owed_and_recognised_after_a_restart(tmp_path: Path) -> None:
    receipts = Receipts(tmp_path / "r.sqlite", retention_s=3600)
    other = HostKey("08", "02473", "pc-02")
    batch = [Receipt(HOST, "0123abcd", 1), Receipt(other, "ffff0000", 1), Receipt(HOST, "0123abcd", 2)]
    for receipt in batch:
        assert receipts.claim(receipt)
    receipts.stored_all(batch)
    receipts.commit()
    assert receipts.take_acks() == [(HOST, "0123abcd", [(1, 2)]), (other, "ffff0000", [(1, 1)])]
    restarted = Receipts(tmp_path / "r.sqlite", retention_s=3600)  # no close(): as after SIGKILL
    assert not any(restarted.claim(receipt) for receipt in batch)
    assert restarted.claim(Receipt(HOST, "0123abcd", 3))


def test_acks_are_handed_out_oldest_owed_first_a_round_at_a_time(tmp_path: Path) -> None:
    receipts = Receipts(tmp_path / "r.sqlite", retention_s=3600)
    hosts = [HostKey("08", "02473", f"pc-{n:02d}") for n in range(5)]
    for host in hosts:
        receipts.stored(Receipt(host, "0123abcd", 1))
    assert [host for host, _s, _r in receipts.take_acks(limit=2)] == hosts[:2]
    receipts.stored(Receipt(hosts[0], "0123abcd", 2))  # acknowledged a moment ago: waits its gap
    assert [host for host, _s, _r in receipts.take_acks(min_gap_s=3600)] == hosts[2:]
    assert receipts.take_acks(min_gap_s=3600) == []
    assert receipts.take_acks() == [(hosts[0], "0123abcd", [(2, 2)])]
    assert receipts.take_acks() == []


def test_a_full_mqtt_client_sends_back_only_the_rest_of_its_round(tmp_path: Path) -> None:
    """Streams not taken yet stay owed in the receipts; only the round being sent is owed again,
    and every report is acknowledged once over the following flushes."""
    receipts = Receipts(tmp_path / "r.sqlite", retention_s=3600)
    hosts = [HostKey("08", "02473", f"pc-{n:03d}") for n in range(ROUND * 3)]
    for host in hosts:
        receipts.stored_all([Receipt(host, "0123abcd", 1), Receipt(host, "0123abcd", 2)])
    client = QueueingClient(10)
    metrics = SelfMetrics()
    acknowledger = Acknowledger(receipts, client.publish, metrics, interval_s=1.0)
    assert acknowledger.flush() == 10
    assert metrics.acks_failed._value.get() == ROUND - 10
    client.room = len(hosts)
    assert acknowledger.flush() == len(hosts) - 10
    acks = [(topic.split("/")[4], decode_ack(payload).ranges) for topic, payload in client.published]
    assert sorted(acks) == sorted((host.host, ((1, 2),)) for host in hosts)
    assert receipts.take_acks() == []


def test_the_consumer_marks_reports_stored_only_once_the_writer_has_stored_them(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    """Real broker, real InfluxDB: numbered reports taken while the writer is not running are
    claimed and owed nothing; once their batch is in InfluxDB they are owed one ack and committed
    (before the acknowledger could send it: the same order as the service's hooks)."""
    database = "receipts_consumer"
    influxd.create_database(database)
    receipts = Receipts(tmp_path / "r.sqlite", retention_s=86400)
    ingestor = Ingestor(
        Registry(Store(tmp_path / "state.sqlite"), "unassigned"),
        SelfMetrics(),
        IngestSettings(max_age_s=86400),
        receipts,
    )
    influx = InfluxClient(InfluxSettings(url=influxd.url, database=database))
    writer = BatchWriter(influx, SelfMetrics(), 100, 0.05, 10_000, DiskBuffer(tmp_path / "buffer.sqlite", 1 << 20))
    settings = MqttSettings(port=mosquitto.port, client_id=f"receipts-{tmp_path.name}")
    consumer = Consumer(settings, ingestor, writer, receipts)
    writer.after_batch.append(receipts.commit)
    topic = report_topic("08", "02473", "pc-01", "metrics")
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"publisher-{tmp_path.name}")
    consumer.start()
    try:
        assert consumer.connected.wait(10)
        publisher.connect("127.0.0.1", mosquitto.port)
        publisher.loop_start()
        for seq in (1, 2, 3):
            body = {"v": 1, "ts": int(T0 + 30 * seq), "system": {"cpu_percent": 10.0 * seq}}
            publisher.publish(topic, with_sequence(encode(body), "0123abcd", seq), qos=1).wait_for_publish(10)
        wait_until(lambda: receipts.streams() == 1 and writer.depth() >= 3, 10, "three reports claimed")
        assert receipts.take_acks() == []  # nothing stored yet: nothing owed
        writer.start()
        owed: list[tuple[HostKey, str, list[tuple[int, int]]]] = []
        wait_until(lambda: bool(owed.extend(receipts.take_acks()) or owed), 10, "the stored reports owed")
        assert owed == [(HOST, "0123abcd", [(1, 3)])]
        assert len(influxd.query("SELECT cpu_percent FROM system", database)) == 3
        restarted = Receipts(tmp_path / "r.sqlite", retention_s=86400)
        assert not any(restarted.claim(Receipt(HOST, "0123abcd", seq)) for seq in (1, 2, 3))
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        consumer.stop()
        writer.stop()
