"""Enrolment: a host's own MQTT user on the broker, its record in the state file, its agent config.

Each host gets its own MQTT user (``<province>-<commune>-<host>``) and a random password, given
to the running broker through the dynamic-security plugin (``collector/registry/dynsec.py``), so
it can log in at once. The state file keeps the password only as a ``$7$`` hash, which lets
``commune-collector dynsec-init`` rebuild the plugin's file from the state (and carry over hosts
enrolled with the old password file).

A host name, once enrolled, is not taken over: enrolling it again is refused unless an admin
asks to rotate its password (``commune-collector enroll --rotate``). Bulk enrolment checks every
row first and enrols nothing if one is bad; then it goes batch by batch, each batch recorded and
handed out (its configs written) as soon as the broker took it, and a batch the broker refused
is taken off again, so no host is left live on the broker with its password lost.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from collector.config import CollectorConfig
from collector.registry import units
from collector.registry.dynsec import (
    DynsecError,
    HostLogin,
    add_host_commands,
    password_hash,
    set_password_command,
    undo_command,
    username_for,
)
from collector.store import Store
from common.wire import COMMUNE_RE, HOST_RE, PROVINCE_RE

BULK_HOSTS_PER_MESSAGE = 50  # hosts whose commands go to the broker in one control message


class EnrollError(ValueError):
    """The host cannot be enrolled; the message says why. ``reason`` names it for counting."""

    def __init__(self, message: str, reason: str = "bad_request") -> None:
        super().__init__(message)
        self.reason = reason


class BulkEnrollStopped(RuntimeError):
    """A batch failed at the broker: ``enrolled`` were enrolled and handed out, ``left`` were not.

    ``stranded`` names hosts of the failed batch that could not be taken off the broker again
    (it did not answer): they may exist there, unrecorded, until an admin deletes them."""

    def __init__(self, cause: DynsecError, enrolled: int, left: list[Place], stranded: list[str]) -> None:
        super().__init__(str(cause))
        self.enrolled = enrolled
        self.left = left
        self.stranded = stranded


class BrokerAdmin(Protocol):
    """What enrolment needs of the broker: run dynamic-security commands (``DynsecAdmin``)."""

    def run(self, commands: list[dict[str, Any]]) -> None: ...


@dataclass(frozen=True)
class Place:
    province: str
    commune: str
    host: str

    @property
    def username(self) -> str:
        return username_for(self.province, self.commune, self.host)


@dataclass(frozen=True)
class Enrollment:
    place: Place
    password: str
    agent_config: str

    @property
    def username(self) -> str:
        return self.place.username


def checked_place(province: str, commune: str, host: str) -> Place:
    """The place with codes zero-padded; EnrollError unless the commune is official in the province."""
    if province.isdigit() and commune.isdigit() and len(province) <= 2 and len(commune) <= 5:
        province, commune = f"{int(province):02d}", f"{int(commune):05d}"
    if not (PROVINCE_RE.match(province) and COMMUNE_RE.match(commune) and units.is_official(province, commune)):
        raise EnrollError(f"commune {commune[:20]!r} is not in province {province[:20]!r} in the official list")
    if not HOST_RE.match(host):
        raise EnrollError(f"host name {host[:70]!r} must match {HOST_RE.pattern}")
    return Place(province, commune, host)


class Enroller:
    """Issues hosts' broker users (one enrolment at a time) and writes their agent configs."""

    def __init__(self, store: Store, config: CollectorConfig, broker: BrokerAdmin) -> None:
        self._store = store
        self._config = config
        self._broker = broker
        self.lock = threading.Lock()  # held from a key's host count to the new host's row

    def enrolled(self, place: Place) -> bool:
        return bool(self._store.query("SELECT 1 FROM mqtt_credentials WHERE username = ?", (place.username,)))

    def check(self, place: Place, rotate: bool = False) -> None:
        """EnrollError unless the host is new (or, to ``rotate``, enrolled): no name is taken over."""
        exists = self.enrolled(place)
        if exists and not rotate:
            raise EnrollError(
                f"host {place.host!r} of commune {place.commune} is enrolled already; an admin can issue it a new "
                "password with `commune-collector enroll --rotate`",
                "host_taken",
            )
        if rotate and not exists:
            raise EnrollError(f"host {place.host!r} of commune {place.commune} is not enrolled; nothing to rotate")

    def enroll(self, place: Place, rotate: bool = False, key_id: int | None = None) -> Enrollment:
        """A new host's user, or (``rotate``, admins only) a new password for an enrolled one."""
        with self.lock:
            return self.enroll_locked(place, rotate, key_id)

    def enroll_locked(self, place: Place, rotate: bool = False, key_id: int | None = None) -> Enrollment:
        """``enroll`` for a caller that holds ``lock`` already."""
        self.check(place, rotate)
        password = secrets.token_urlsafe(24)
        if rotate:
            self._broker.run([set_password_command(place.username, password)])
        else:
            self._broker.run(add_host_commands(place.username, password, place.province, place.commune, place.host))
        self._record([(place, password)], key_id)
        return Enrollment(place, password, self.agent_config(place, password))

    def enroll_many(self, places: Sequence[Place], hand_out: Callable[[list[Enrollment]], None]) -> int:
        """New users for hosts already checked (none enrolled), sent to the broker in batches; each
        batch is recorded and given to ``hand_out`` as soon as the broker took it. The number
        enrolled, or BulkEnrollStopped when a batch failed (that batch is taken off the broker)."""
        enrolled = 0
        with self.lock:
            for start in range(0, len(places), BULK_HOSTS_PER_MESSAGE):
                batch = [(place, secrets.token_urlsafe(24)) for place in places[start : start + BULK_HOSTS_PER_MESSAGE]]
                commands = [
                    c for p, pw in batch for c in add_host_commands(p.username, pw, p.province, p.commune, p.host)
                ]
                try:
                    self._broker.run(commands)
                except DynsecError as exc:
                    made = [c for n, c in enumerate(commands) if n not in exc.refused]
                    raise BulkEnrollStopped(exc, enrolled, list(places[start:]), self._take_back(made)) from exc
                self._record(batch, None)
                hand_out([Enrollment(place, password, self.agent_config(place, password)) for place, password in batch])
                enrolled += len(batch)
        return enrolled

    def _take_back(self, made: list[dict[str, Any]]) -> list[str]:
        """Delete what a failed batch made (or may have made) on the broker, but not what the
        broker refused to make, which may be someone else's; the names that stay there."""
        commands = [undo_command(c) for c in reversed(made)]  # clients before their roles
        try:
            self._broker.run(commands)
        except DynsecError as exc:
            return sorted({str(c.get("username") or c.get("rolename")) for n, c in enumerate(commands)
                           if n not in exc.refused})  # fmt: skip
        return []

    def _record(self, issued: list[tuple[Place, str]], key_id: int | None) -> None:
        now = time.time()
        self._store.executemany(
            "INSERT INTO mqtt_credentials (username, province, commune, host, password_hash, enrolled_at, enroll_key) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(username) DO UPDATE SET "
            "password_hash = excluded.password_hash, enrolled_at = excluded.enrolled_at",
            [(p.username, p.province, p.commune, p.host, password_hash(pw), now, key_id) for p, pw in issued],
        )

    def agent_config(self, place: Place, password: str) -> str:
        settings = self._config.enroll
        return agent_config_text(
            place, password, settings.broker_host, settings.broker_port, settings.tls, settings.agent_ca_file
        )


def host_logins(store: Store) -> list[HostLogin]:
    """Every enrolled host with its stored hash, for the plugin's file."""
    rows = store.query(
        "SELECT username, province, commune, host, password_hash FROM mqtt_credentials ORDER BY username"
    )
    return [HostLogin(*row) for row in rows]


def agent_config_text(place: Place, password: str, broker_host: str, broker_port: int, tls: bool, ca_file: str) -> str:
    lines = [
        f"# commune-agent config for {place.host} in commune {place.commune}, province {place.province}.",
        "# Generated by commune-collector enroll; keep it readable by the agent's user only.",
        "[identity]",
        f'province = "{place.province}"',
        f'commune = "{place.commune}"',
        f'host = "{place.host}"',
        "",
        "[mqtt]",
        f'host = "{broker_host}"',
        f"port = {broker_port}",
        f'username = "{place.username}"',
        f'password = "{password}"',
        f"tls = {'true' if tls else 'false'}",
        f'ca_file = "{ca_file}"',
        "",
    ]
    return "\n".join(lines)
