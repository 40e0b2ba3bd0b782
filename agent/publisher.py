"""MQTT side of the agent: connection, retained status with Last Will, and draining the spool.

paho's network thread reconnects by itself with backoff, from a random first delay after a lost
connection (``reconnect_delays``) so a province's PCs do not all return in one second. A report
leaves the spool only once the collector acknowledges that it has stored it (``.../cmd/ack``):
the broker's PUBACK only marks it sent, because a broker that dies uncleanly loses what it had queued. Sent reports
that stay unacknowledged for ``[spool] ack_timeout_s`` are sent again, oldest first, at the
drain rate, when they went out on an earlier connection or the collector has acknowledged
later ones (so these went missing). A re-sent report is the same InfluxDB point.

Negotiation: the agent's ``online`` status names its spool's stream; an acknowledging
collector answers with an (empty) ack. Until this agent has heard one (remembered in the
spool), it holds its reports for at most ``[spool] ack_wait_s`` while connected, then falls
back to broker-level release (the PUBACK deletes the report, as before acknowledgements) and
sends reports without ``seq`` so a collector built before them still accepts them. The first
ack turns acknowledgements on, and they stay on across restarts until a collector again sends no
ack for ``ack_wait_s`` while a report waits for one (an older collector put back, say): then the
agent falls back the same way, once logged, and the reports the broker had taken but nobody
acknowledged are sent again without ``seq`` (the same points, at worst twice).

Versions: the ``online`` status is the agent's hello (its release and ``capabilities``); the
collector's answer (an ack with no ranges) says its release and what it does, and the agent logs
what they agreed, once; a collector with ``[mqtt] acks = false`` answers too, without ``acks``, and
the agent releases at the PUBACK but sends every field and kind. A collector that never answered may
be release 0.1.0, which refused fields and kinds it did not know: until one answers (again after a
fallback, which forgets the release), reports leave out what 0.1.0 did not know
(``common.wire.downgrade``), and a report it would refuse whole (a kind it did not know:
peripherals) is held: it stays in the spool, neither sent nor deleted, until a collector says its
release, then goes as it is; the spool's bounds (size, age) still apply, so a 0.1.0 collector for
good costs at most those. The drain steps its cursor over held reports, so they cost no wakes. The
trade-off: while no release is known (a current collector down longer than ``ack_wait_s``, for an
upgrade or a crash), the new fields of the reports that do go (``ping_method``, the ``io`` section...)
are left out of them for good.

paho calls ``on_publish`` and ``on_message`` while holding its own lock, so callbacks only
queue events and the agent's main thread does all spool bookkeeping (no lock order to get wrong).

The main loop calls ``drain`` at every wake (a job, a USB poll, a PUBACK, an ack), so ``drain`` asks
the spool only what can have changed: reports never sent only after a new one was put (the
outbox counts its puts), and reports due again only once the oldest sent one can have passed
``ack_timeout_s``, or at once after a new connection or an ack of later reports. That timer runs on
a monotonic clock (a report's ``sent`` mark is the publisher's ``clock``, cleared at every start), so a
wall clock stepped back by NTP or a user does not hold re-sends back; a report's ``ts`` stays UTC.
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.config import AgentConfig
from agent.outbox import Outbox
from agent.spool import SpooledMessage
from common.version import VERSION
from common.wire import (
    ACK_COMMAND,
    ACTION_COMMAND,
    ANSWER_KIND,
    KNOWN_IDS_COMMAND,
    SCHEMA_VERSION,
    KnownIdRow,
    WireError,
    agreed,
    command_topic,
    decode_ack,
    decode_known_ids,
    downgrade,
    encode,
    report_topic,
    stamp,
    status_payload,
    with_sequence,
)

log = logging.getLogger("commune_agent.publisher")

INFLIGHT_WINDOW = 16
COMMAND_MAX_AGE_S = 600.0
CONNECT_FAIL_LOG_INTERVAL_S = 300.0
NETWORK_LOOP_MAX_S = 15.0
MAX_QUEUED_ACKS = 1000
RECONNECT_MIN_S = 1.0
RECONNECT_SPREAD_S = 10.0  # the first retry after a lost connection falls anywhere in 1..10 s
RECONNECT_MAX_S = 60.0  # below the collector's restart grace (90 s): back inside it after a server outage

UNSENT_SCAN = 64  # unsent reports looked at per query: held ones are stepped over, not counted as sent

# What became of a report handed to ``_publish``
SENT = "sent"  # with paho now
HELD = "held"  # no collector release known and release 0.1.0 would refuse it: stays in the spool
FULL = "full"  # paho cannot take it now: try again later

# How reports leave the spool
WAITING = "waiting"  # no acknowledging collector heard yet: hold reports for at most ack_wait_s
ACKS = "acks"  # the collector's acknowledgement releases a report
BROKER = "broker"  # fallback: the broker's PUBACK releases a report


def capabilities(config: AgentConfig) -> tuple[str, ...]:
    """What this agent does, as its hello says (``common.wire.CAPABILITIES``)."""
    caps = ["acks"]
    if config.peripherals.enabled:
        caps.append("peripherals")
    if config.disk_health.enabled and sys.platform == "linux":  # as the runner starts its job
        caps.append("disk_health")
    if config.actions.allow:
        caps.append("actions")
    return tuple(caps)


def reconnect_delays(rng: random.Random) -> Iterator[float]:
    """Seconds to wait before each attempt after a lost connection: a random first delay, so the
    PCs of a province that lost the same broker do not all come back in the same second, then
    doubling up to ``RECONNECT_MAX_S``, as paho's own backoff does from its minimum."""
    delay = rng.uniform(RECONNECT_MIN_S, RECONNECT_SPREAD_S)
    while True:
        yield delay
        delay = min(delay * 2, RECONNECT_MAX_S)


def network_loop_timeout(keepalive_s: float) -> float:
    """How long paho's network thread sleeps when idle: 15 s, or a quarter of the keepalive when
    that is shorter, so a PINGREQ goes out at most a quarter keepalive late (the broker waits 1.5)."""
    if keepalive_s <= 0:  # no keepalive: nothing to send on time
        return NETWORK_LOOP_MAX_S
    return min(NETWORK_LOOP_MAX_S, max(1.0, keepalive_s / 4))


class QuietClient(mqtt.Client):
    """paho's client whose network thread, when idle, wakes every ``loop_timeout_s`` (15 s with the
    default 60 s keepalive; see ``network_loop_timeout``) instead of every second.

    A publish or an incoming packet still wakes it at once (paho's socket pair), and the agent
    publishes every 30 s, so nothing waits; an old PC saved about 2 ms of CPU per 30 s report going
    from 1 s to 5 s (measured 8 -> 6 ms), and each idle wake costs a fraction of a millisecond.
    ``loop_start`` runs ``_thread_main``, which only calls ``loop_forever`` with the default 1 s
    (paho-mqtt 2.2; were it renamed, paho would just keep its 1 s loop).
    """

    loop_timeout_s = NETWORK_LOOP_MAX_S

    def _thread_main(self) -> None:
        try:
            self.loop_forever(timeout=self.loop_timeout_s, retry_first_connection=True)
        finally:
            self._thread = None


class Publisher:
    """Publishes spooled reports at a bounded rate while connected."""

    def __init__(self, config: AgentConfig, spool: Outbox, clock: Callable[[], float] = time.monotonic) -> None:
        ident = config.identity
        self._spool = spool
        self._clock = clock  # the re-send timer's: a wall clock stepped back must not delay re-sends
        self._spool_config = config.spool
        self._status_topic = report_topic(ident.province, ident.commune, ident.host, "status")
        self._ack_topic = command_topic(ident.province, ident.commune, ident.host, ACK_COMMAND)
        # main thread only: paho mid -> (spool id, kept until the collector acknowledges it)
        self._inflight: dict[int, tuple[int, bool]] = {}
        self._next_after = 0
        self._acked: deque[int] = deque()
        self._collector_acks: deque[bytes] = deque(maxlen=MAX_QUEUED_ACKS)
        self.mode = ACKS if spool.acks_heard() else WAITING
        self._waiting_since: float | None = None  # monotonic; counts only while connected
        self._highest_acked = 0  # sent reports below it and still unacknowledged went missing
        self.caps = capabilities(config)
        self.collector_version: str | None = None  # from the collector's answer to the hello
        self._collector_hello: tuple[str | None, tuple[str, ...] | None] | None = None  # last one logged
        self._acks_since = clock()  # the last ack, or the connection if later (``clock``, as the spool's sent marks)
        self._fallback_check_at = 0.0
        self._held: set[int] = set()  # spool ids held until a collector says its release (``_for_oldest_collector``)
        self._held_logged = False
        self._due_check_at = 0.0  # when (``clock``) to look again for reports due to be re-sent (0: now)
        self._unsent_seen: int | None = None  # the outbox's puts when all its unsent reports had gone to paho
        self.acks_received = 0
        self.acks_rejected = 0
        self.resent = 0
        self._connections = 0
        self._seen_connections = 0
        self._seen_generation = spool.generation
        self.connected = threading.Event()
        self.wake = threading.Event()  # set by paho's thread when there is something to settle
        self._mqtt_config = config.mqtt
        self._last_fail: tuple[str, float] = ("", 0.0)
        self._speedtest_topic = command_topic(ident.province, ident.commune, ident.host, "speedtest")
        self.speedtest_requests: deque[str] = deque(maxlen=10)  # modes asked for; "" = the configured ones
        self.commands_rejected = 0
        self._accepts_commands = ident.role == "line-probe"
        self._known_ids_topic = command_topic(ident.province, ident.commune, ident.host, KNOWN_IDS_COMMAND)
        # set by the runner when it reports peripherals: known USB ids from the collector (paho's thread)
        self.on_known_ids: Callable[[list[KnownIdRow]], None] | None = None
        self._action_topic = command_topic(ident.province, ident.commune, ident.host, ACTION_COMMAND)
        self._answer_topic = report_topic(ident.province, ident.commune, ident.host, ANSWER_KIND)
        # set by the runner: an action request -> the ``demand`` of its answer (paho's thread; agent/actions.py)
        self.on_action: Callable[[bytes], dict[str, Any] | None] | None = None
        client = QuietClient(
            CallbackAPIVersion.VERSION2,
            client_id=f"agent-{ident.province}-{ident.commune}-{ident.host}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if config.mqtt.username:
            client.username_pw_set(config.mqtt.username, config.mqtt.password or None)
        if config.mqtt.tls:
            client.tls_set(ca_certs=config.mqtt.ca_file or None)
        client.will_set(self._status_topic, status_payload("offline", reason="will"), qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=int(RECONNECT_MAX_S))  # first connection: 1 s, doubling
        client.max_inflight_messages_set(INFLIGHT_WINDOW + 4)
        client.loop_timeout_s = network_loop_timeout(config.mqtt.keepalive_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self.client = client

    def start(self) -> None:
        cfg = self._mqtt_config
        log.info("connecting", extra={"broker": f"{cfg.host}:{cfg.port}", "tls": cfg.tls, "release": self.mode})
        self.client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        self.client.loop_start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Say offline (as the Last Will would), wait briefly for PUBACKs and the collector's
        acknowledgements, then disconnect."""
        if self.connected.is_set():
            info = self.client.publish(self._status_topic, status_payload("offline", reason="stop"), qos=1, retain=True)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and (self.inflight() or self._awaiting() or not info.is_published()):
                time.sleep(0.05)
                self.drain(0)
        self.client.disconnect()
        self.client.loop_stop()

    def inflight(self) -> int:
        self._settle()
        return len(self._inflight)

    def busy(self) -> bool:
        """Something to do soon: reports not yet sent, PUBACKs or acknowledgements to settle.

        With acknowledgements on, a report in flight needs no tick: its PUBACK wakes the loop, and so
        does the ack after it. While disconnected a backlog is not busy either: nothing can be sent
        or settle until ``_on_connect`` wakes the loop, so an offline PC does not poll its spool four
        times a second for hours."""
        if self._acked or self._collector_acks:
            return True
        if not self.connected.is_set():
            return False
        if self._inflight and self.mode != ACKS:
            return True
        return self._unsent_seen != self._spool.puts and bool(self._spool.unsent(1))

    def drain(self, budget: int) -> int:
        """Settle acks, then publish up to ``budget`` spooled messages; returns how many were sent.

        Reports due to be sent again go first (they are the oldest), then reports never sent."""
        self._settle()
        if not self.connected.is_set() or budget <= 0 or not self._releasing():
            return 0
        room = min(budget, INFLIGHT_WINDOW - len(self._inflight))
        sent = 0
        if room > 0 and self.mode == ACKS and self._clock() >= self._due_check_at:
            due = self._due(room)
            for message in due:
                if self._publish(message) == FULL:  # acknowledged: never held
                    return sent
                self.resent += 1
                sent += 1
            if len(due) < room:
                self._plan_due_check()
        if room <= sent or self._unsent_seen == self._spool.puts:
            return sent  # no room, or nothing put since every unsent report went to paho
        puts = self._spool.puts
        while True:
            unsent = self._spool.unsent(UNSENT_SCAN, after_id=self._next_after)
            for message in unsent:
                if sent >= room:
                    return sent
                # in flight already when the cursor went back for held reports (``_release_held``)
                if message.id not in self._spool.in_flight:
                    outcome = self._publish(message)
                    if outcome == FULL:
                        return sent
                    if outcome == SENT:
                        sent += 1
                self._next_after = message.id
            if len(unsent) < UNSENT_SCAN:  # every unsent report is with paho now, or held
                self._unsent_seen = puts
                return sent

    def _plan_due_check(self) -> None:
        """Nothing is due now: the next report can come due when the oldest one sent and not yet
        past ``ack_timeout_s`` passes it (a new connection or an ack of later reports look at once)."""
        timeout = self._spool_config.ack_timeout_s
        earliest = self._spool.earliest_sent(self._clock() - timeout)
        self._due_check_at = math.inf if earliest is None else earliest + timeout

    def _releasing(self) -> bool:
        """False while waiting (bounded) to hear whether the collector acknowledges."""
        if self.mode == ACKS:
            self._check_still_acknowledged()
            return True
        if self.mode != WAITING:
            return True
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        if now - self._waiting_since < self._spool_config.ack_wait_s:
            return False
        self.mode = BROKER
        log.warning(
            "collector sent no acknowledgement; falling back to broker-level release "
            "(a report leaves the spool at the broker's PUBACK) until one arrives",
            extra={"ack_wait_s": self._spool_config.ack_wait_s, "topic": self._ack_topic},
        )
        return True

    def _check_still_acknowledged(self) -> None:
        """Acknowledgements on, and none for ``ack_wait_s`` although a report sent since the last
        one waits (at most once a second): the collector does not acknowledge, fall back."""
        now = self._clock()
        wait = self._spool_config.ack_wait_s
        if now < self._fallback_check_at or now - self._acks_since < wait:
            return
        self._fallback_check_at = now + 1.0
        earliest = self._spool.earliest_sent(self._acks_since + 1e-6)  # sent after it, not with it
        if earliest is None or now - earliest < wait:
            return
        self.mode = BROKER
        self.collector_version = None  # maybe an older one now: leave out what 0.1.0 did not know
        self._spool.set_acks_heard(False)
        again = self._spool.unsend()
        self._inflight.clear()  # their PUBACKs, if they come, release nothing: all go again without seq
        self._spool.in_flight.clear()
        self._next_after = 0
        self._held.clear()
        self._due_check_at, self._unsent_seen = 0.0, None
        log.warning(
            "collector stopped acknowledging; falling back to broker-level release (a report leaves the "
            "spool at the broker's PUBACK; those the broker took and nobody acknowledged go again) until one arrives",
            extra={"ack_wait_s": wait, "sent_again": again, "topic": self._ack_topic},
        )

    def _due(self, room: int) -> list[SpooledMessage]:
        resending = {spool_id for spool_id, _keep in self._inflight.values()}
        due = self._spool.due(
            room + len(resending),
            self._clock() - self._spool_config.ack_timeout_s,
            self._seen_connections,
            self._highest_acked,
        )
        return [message for message in due if message.id not in resending][:room]

    def _publish(self, message: SpooledMessage) -> str:
        """Hand one report to paho: ``SENT``, ``HELD`` (left in the spool: no collector release known,
        and 0.1.0 would refuse it) or ``FULL`` (paho cannot take it now: try again later)."""
        keep = self.mode == ACKS
        payload: bytes | None = message.payload
        if not keep and self.collector_version is None:
            payload = self._for_oldest_collector(message)
            if payload is None:
                return HELD
        if keep:
            try:
                payload = with_sequence(message.payload, self._spool.stream, message.id)
            except WireError as exc:  # not a report: it can never be sent, so it must not block the rest
                log.error("spooled message dropped: not a JSON report", extra={"id": message.id, "detail": exc.detail})
                self._spool.remove(message.id)
                return SENT
        info = self.client.publish(message.topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return FULL
        self._inflight[info.mid] = (message.id, keep)
        self._spool.in_flight.add(message.id)
        self._held.discard(message.id)
        return SENT

    def _for_oldest_collector(self, message: SpooledMessage) -> bytes | None:
        """The report as release 0.1.0's collector takes it; None for one it would refuse whole (a kind
        it did not know), which stays in the spool, held until a collector says its release (logged once)."""
        kind = message.topic.rsplit("/", 1)[-1]
        payload = downgrade(kind, message.payload)
        if payload is None:
            self._held.add(message.id)
            if not self._held_logged:
                self._held_logged = True
                log.warning(
                    "collector has not said its release (0.1.0?): reports of a kind it does not know stay in the "
                    "spool until a collector that knows them answers",
                    extra={"kind": kind},
                )
        return payload

    def held(self) -> int:
        """Reports held back (``_for_oldest_collector``) as the drain last went over them."""
        return len(self._held)

    def _release_held(self) -> None:
        """A collector said its release, or acknowledges: the drain goes back to the first held report."""
        if self._held:
            self._next_after = min(min(self._held) - 1, self._next_after)
            self._unsent_seen = None
            log.info("reports held for the collector's release are sent now", extra={"held": len(self._held)})
            self._held.clear()

    def _awaiting(self) -> bool:
        return self.mode == ACKS and self._spool.awaiting_ack() > 0

    def _settle(self) -> None:
        if self._seen_connections != self._connections:
            self._waiting_since = None  # ack_wait_s counts time connected: a new connection waits again
        if self._seen_connections != self._connections or self._seen_generation != self._spool.generation:
            # A new connection, or the outbox changed store (disk <-> memory): whatever was in
            # flight is sent again from the start of the store now in use.
            self._seen_connections = self._connections
            self._seen_generation = self._spool.generation
            self._inflight.clear()
            self._spool.in_flight.clear()
            self._next_after = 0
            self._held.clear()  # the drain goes over them again
            self._due_check_at, self._unsent_seen = 0.0, None
        now = self._clock()
        while self._acked:
            entry = self._inflight.pop(self._acked.popleft(), None)
            if entry is None:
                continue
            spool_id, keep = entry
            self._spool.in_flight.discard(spool_id)
            if keep:
                self._spool.mark_sent(spool_id, now, self._seen_connections)
                self._due_check_at = min(self._due_check_at, now + self._spool_config.ack_timeout_s)
            else:
                self._spool.remove(spool_id)
        while self._collector_acks:
            self._settle_ack(self._collector_acks.popleft())

    def _settle_ack(self, payload: bytes) -> None:
        """The collector has stored these reports: release them, and keep reports until acknowledged."""
        try:
            ack = decode_ack(payload)
        except WireError as exc:
            self.acks_rejected += 1
            log.warning("acknowledgement ignored: malformed", extra={"reason": exc.reason, "detail": exc.detail})
            return
        if ack.stream != self._spool.stream:
            log.debug("acknowledgement for another spool ignored", extra={"stream": ack.stream})
            return
        self._heard_collector(ack.version, ack.caps)
        if ack.caps is not None and "acks" not in ack.caps:
            self._not_acknowledging()
            return
        self._acks_since = self._clock()
        self.acks_received += 1
        released = self._spool.release(ack.ranges)
        highest = max((last for _first, last in ack.ranges), default=0)
        if highest > self._highest_acked:  # sent reports below it and unacknowledged may be due now
            self._highest_acked, self._due_check_at = highest, 0.0
        if self.mode != ACKS:
            self._due_check_at = 0.0
            self._release_held()
            log.info(
                "collector acknowledges stored reports; each report now stays in the spool until acknowledged",
                extra={"was": self.mode},
            )
            self.mode = ACKS
            self._spool.set_acks_heard(True)
        log.debug("acknowledged", extra={"released": released, "ranges": len(ack.ranges)})

    def _heard_collector(self, version: str | None, caps: tuple[str, ...] | None) -> None:
        """The collector's answer to the hello: its release, and what both sides do (logged once)."""
        if version is None:
            return
        self.collector_version = version
        self._release_held()
        if self._collector_hello != (version, caps):
            self._collector_hello = (version, caps)
            log.info(
                "collector hello",
                extra={
                    "collector_version": version,
                    "collector_caps": ",".join(caps or ()),
                    "agreed": ",".join(agreed(self.caps, caps)),
                    "agent_version": VERSION,
                },
            )

    def _not_acknowledging(self) -> None:
        """The collector said it does not acknowledge ([mqtt] acks off): broker-level release now."""
        if self.mode == BROKER:
            return
        was, self.mode = self.mode, BROKER
        self._spool.set_acks_heard(False)
        log.warning(
            "collector says it does not acknowledge; falling back to broker-level release "
            "(a report leaves the spool at the broker's PUBACK)",
            extra={"was": was},
        )

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused connection", extra={"reason": str(reason)})
            return
        self._connections += 1
        if self.on_known_ids is not None:  # before the hello, which the collector answers with them
            client.subscribe(self._known_ids_topic, qos=1)
        self._acks_since = self._clock()
        hello = status_payload("online", self._spool.stream, version=VERSION, caps=self.caps)
        client.publish(self._status_topic, hello, qos=1, retain=True)
        client.subscribe(self._ack_topic, qos=1)
        if self._accepts_commands:
            client.subscribe(self._speedtest_topic, qos=1)
        if self.on_action is not None and "actions" in self.caps:
            client.subscribe(self._action_topic, qos=1)
        self.connected.set()
        self.wake.set()
        log.info("connected")

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        """An acknowledgement (settled by the main thread), or a speed-test request from the
        collector: ``{"v": 1, "ts": <now>, "id": "...", "mode": "wan"}``."""
        if message.topic == self._ack_topic:
            self._collector_acks.append(bytes(message.payload))
            self.wake.set()
            return
        if message.topic == self._known_ids_topic and self.on_known_ids is not None:
            self._known_ids(bytes(message.payload), self.on_known_ids)
            return
        if message.topic == self._action_topic and self.on_action is not None:
            self._answer_action(bytes(message.payload), self.on_action)
            return
        mode = command_mode(bytes(message.payload), time.time())
        if mode is None:
            self.commands_rejected += 1
            log.warning("command ignored: malformed or stale", extra={"topic": message.topic[:120]})
            return
        self.speedtest_requests.append(mode)
        log.info("speed test requested", extra={"mode": mode or "configured"})

    def _answer_action(self, payload: bytes, take: Callable[[bytes], dict[str, Any] | None]) -> None:
        """An action request: answered at once, accepted or refused, as a report of no section on the
        answer topic (QoS 1, not spooled: an answer the desk no longer waits for is worth nothing)."""
        demand = take(payload)
        if demand is not None:
            answer = encode({"v": SCHEMA_VERSION, "ts": stamp(), "demand": demand})
            self.client.publish(self._answer_topic, answer, qos=1)
        self.wake.set()  # an accepted action runs at the loop's next wake

    def _known_ids(self, payload: bytes, apply: Callable[[list[KnownIdRow]], None]) -> None:
        """Known USB ids the collector handed over: all applied, or none when the command is bad."""
        try:
            rows = decode_known_ids(payload)
        except WireError as exc:
            self.commands_rejected += 1
            log.warning("known ids from the collector ignored", extra={"error": str(exc)[:200]})
            return
        apply(rows)
        log.info("known ids from the collector applied", extra={"rows": len(rows)})

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        # paho calls this inside its ``except OSError`` and keeps the error to itself: read it here.
        error = sys.exc_info()[1]
        reason = f"{type(error).__name__}: {error}" if error is not None else "unknown"
        now = time.monotonic()
        if reason != self._last_fail[0] or now - self._last_fail[1] >= CONNECT_FAIL_LOG_INTERVAL_S:
            self._last_fail = (reason, now)
            log.warning("cannot connect to the broker; reports stay spooled", extra={"reason": reason[:300]})

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        # paho waits min_delay before its first retry, then doubles: a random start spreads them
        first = next(reconnect_delays(random.Random()))
        self.client.reconnect_delay_set(min_delay=first, max_delay=int(RECONNECT_MAX_S))  # type: ignore[arg-type]
        log.warning("disconnected; will reconnect", extra={"reason": str(reason)})

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _reason: Any, _p: Any) -> None:
        """A PUBACK, milliseconds after the wake that published (caches still warm): settled at once."""
        self._acked.append(mid)
        self.wake.set()


def command_mode(payload: bytes, now: float) -> str | None:
    """The mode a speed-test command asks for ("" = the configured ones), or None when it is not valid."""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or body.get("v") != SCHEMA_VERSION:
        return None
    ts, mode = body.get("ts"), body.get("mode", "")
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not now - COMMAND_MAX_AGE_S <= ts <= now + 60:
        return None
    if mode not in ("", "wan", "internet"):
        return None
    return str(mode)
