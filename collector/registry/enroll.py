"""Enrollment: per-host MQTT credentials, the Mosquitto password file and ACL, and the agent's config.

Each host gets its own MQTT user (``<province>-<commune>-<host>``) and a random password. The
ACL lets that user publish only its own report topics and read only its own command topic, so
the topic a message arrives on is the sender's authenticated identity: the collector takes the
province, commune and host tags from the topic and one commune cannot write as another.

Passwords are kept only as Mosquitto's PBKDF2-SHA512 hashes (the ``$7$`` format that
``mosquitto_passwd`` writes). After a change, Mosquitto re-reads both files on SIGHUP
(``systemctl reload mosquitto``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from collector.config import CollectorConfig
from collector.registry import units
from collector.store import Store
from common.wire import COMMUNE_RE, HOST_RE, PROVINCE_RE, REPORT_KINDS, TOPIC_ROOT

PBKDF2_ITERATIONS = 101  # what mosquitto_passwd writes; the passwords are random, so this is not the defence
SALT_BYTES = 12


class EnrollError(ValueError):
    """The host cannot be enrolled; the message says why."""


@dataclass(frozen=True)
class Enrollment:
    username: str
    password: str
    agent_config: str


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, PBKDF2_ITERATIONS)
    return f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def username_for(province: str, commune: str, host: str) -> str:
    return f"{province}-{commune}-{host}"


def host_acl(username: str, province: str, commune: str, host: str) -> list[str]:
    base = f"{TOPIC_ROOT}/{province}/{commune}/{host}"
    return [
        f"user {username}",
        *(f"topic write {base}/{kind}" for kind in REPORT_KINDS),
        f"topic read {base}/cmd/#",
        "",
    ]


def collector_acl(username: str) -> list[str]:
    return [f"user {username}", f"topic read {TOPIC_ROOT}/#", f"topic write {TOPIC_ROOT}/+/+/+/cmd/#", ""]


class Enroller:
    def __init__(self, store: Store, config: CollectorConfig) -> None:
        self._store = store
        self._config = config

    def enroll(self, province: str, commune: str, host: str) -> Enrollment:
        """Issue (or rotate) a host's credentials, rewrite the broker's files, return the agent config."""
        if province.isdigit() and commune.isdigit():
            province, commune = f"{int(province):02d}", f"{int(commune):05d}"
        if not (PROVINCE_RE.match(province) and COMMUNE_RE.match(commune) and units.is_official(province, commune)):
            raise EnrollError(f"commune {commune!r} is not in province {province!r} in the official list")
        if not HOST_RE.match(host):
            raise EnrollError(f"host name {host!r} must match {HOST_RE.pattern}")
        username = username_for(province, commune, host)
        password = secrets.token_urlsafe(24)
        self._store.execute(
            "INSERT INTO mqtt_credentials (username, province, commune, host, password_hash, enrolled_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(username) DO UPDATE SET "
            "password_hash = excluded.password_hash, enrolled_at = excluded.enrolled_at",
            (username, province, commune, host, mosquitto_hash(password), time.time()),
        )
        self.write_broker_files()
        return Enrollment(username, password, self.agent_config(province, commune, host, username, password))

    def write_broker_files(self) -> None:
        """Regenerate the password file and the ACL from every enrolled host plus the collector's own user."""
        settings = self._config.enroll
        rows = self._store.query(
            "SELECT username, province, commune, host, password_hash FROM mqtt_credentials ORDER BY username"
        )
        passwd: list[str] = []
        acl: list[str] = ["# Written by commune-collector enroll; edits are overwritten.", ""]
        mqtt = self._config.mqtt
        if mqtt.username:
            passwd.append(f"{mqtt.username}:{mosquitto_hash(mqtt.password.get_secret_value())}")
            acl += collector_acl(mqtt.username)
        for username, province, commune, host, password_hash in rows:
            passwd.append(f"{username}:{password_hash}")
            acl += host_acl(username, province, commune, host)
        write_private(Path(settings.password_file), "\n".join(passwd) + "\n")
        write_private(Path(settings.acl_file), "\n".join(acl))

    def agent_config(self, province: str, commune: str, host: str, username: str, password: str) -> str:
        settings = self._config.enroll
        lines = [
            f"# commune-agent config for {host} in commune {commune}, province {province}.",
            "# Generated by commune-collector enroll; keep it readable by the agent's user only.",
            "[identity]",
            f'province = "{province}"',
            f'commune = "{commune}"',
            f'host = "{host}"',
            "",
            "[mqtt]",
            f'host = "{settings.broker_host}"',
            f"port = {settings.broker_port}",
            f'username = "{username}"',
            f'password = "{password}"',
            f"tls = {'true' if settings.tls else 'false'}",
            f'ca_file = "{settings.agent_ca_file}"',
            "",
        ]
        return "\n".join(lines)


def write_private(path: Path, text: str) -> None:
    """Write atomically, mode 0640: Mosquitto (in the file's group) reads it, other users cannot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)
