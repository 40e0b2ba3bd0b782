"""Mosquitto's dynamic-security plugin: the broker's users, and what each may publish and read.

Each host has its own MQTT user (``<province>-<commune>-<host>``) and a role of its own that lets
it publish only its own report topics and read only its own command topic, so the topic a message
arrives on is the sender's authenticated identity. The collector's user reads every report and
writes commands; the admin user may only administer the plugin.

There are two ways in. ``broker_document`` is the plugin's JSON file, written before the broker
starts: the first install, and the migration of hosts enrolled with the old password file (the
plugin keeps the very same PBKDF2-SHA512 hashes as the ``$7$`` lines, so their passwords keep
working). ``DynsecAdmin`` changes the running broker over ``$CONTROL/dynamic-security/v1``: the
change applies at once, with no reload.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collector.config import MqttSettings
from common.wire import REPORT_KINDS, TOPIC_ROOT

log = logging.getLogger("commune_collector.dynsec")

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
PBKDF2_ITERATIONS = (
    101  # what mosquitto_passwd and the plugin write; the passwords are random, so this is not the defence
)
SALT_BYTES = 12  # the plugin accepts only 12-byte salts
ADMIN_ROLE = "commune-admin"
COLLECTOR_ROLE = "commune-collector"
HOST_ROLE_PREFIX = "host-"


class DynsecError(RuntimeError):
    """The broker did not carry out a dynamic-security command; the message says which and why.

    ``refused`` holds the positions (in the batch ``run`` was given) of the commands the broker
    answered with an error; the others were carried out, or (no answer) may have been."""

    def __init__(self, message: str, refused: frozenset[int] = frozenset()) -> None:
        super().__init__(message)
        self.refused = refused


def password_hash(password: str, salt: bytes | None = None) -> str:
    """The ``$7$`` form (PBKDF2-SHA512) that ``mosquitto_passwd`` writes and the state file keeps."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, PBKDF2_ITERATIONS)
    return f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def username_for(province: str, commune: str, host: str) -> str:
    return f"{province}-{commune}-{host}"


def role_for(username: str) -> str:
    return HOST_ROLE_PREFIX + username


def acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "allow": True, "priority": 0}


def host_acls(province: str, commune: str, host: str) -> list[dict[str, Any]]:
    """Publish its own report topics; subscribe to and receive its own command topic; nothing else."""
    base = f"{TOPIC_ROOT}/{province}/{commune}/{host}"
    return [
        *(acl("publishClientSend", f"{base}/{kind}") for kind in REPORT_KINDS),
        acl("subscribePattern", f"{base}/cmd/#"),
        acl("publishClientReceive", f"{base}/cmd/#"),
    ]


COLLECTOR_ACLS = [
    acl("subscribePattern", f"{TOPIC_ROOT}/#"),
    acl("publishClientReceive", f"{TOPIC_ROOT}/#"),
    acl("publishClientSend", f"{TOPIC_ROOT}/+/+/+/cmd/#"),
]
ADMIN_ACLS = [
    acl("publishClientSend", "$CONTROL/dynamic-security/#"),
    acl("publishClientReceive", "$CONTROL/dynamic-security/#"),
    acl("subscribePattern", "$CONTROL/dynamic-security/#"),
]


@dataclass(frozen=True)
class HostLogin:
    """A host's broker user as the state file keeps it: its place and its password's ``$7$`` hash."""

    username: str
    province: str
    commune: str
    host: str
    password_hash: str


def add_host_commands(username: str, password: str, province: str, commune: str, host: str) -> list[dict[str, Any]]:
    """The commands that give a new host its role and its user."""
    role = role_for(username)
    return [
        {"command": "createRole", "rolename": role, "acls": host_acls(province, commune, host)},
        {"command": "createClient", "username": username, "password": password, "roles": [{"rolename": role}]},
    ]


def undo_command(command: dict[str, Any]) -> dict[str, Any]:
    """The command that takes back what a createRole or createClient command made."""
    if command["command"] == "createRole":
        return {"command": "deleteRole", "rolename": command["rolename"]}
    return {"command": "deleteClient", "username": command["username"]}


def set_password_command(username: str, password: str) -> dict[str, Any]:
    return {"command": "setClientPassword", "username": username, "password": password}


def stored_password(hashed: str) -> dict[str, Any]:
    """A ``$7$`` hash as the plugin's file keeps it (password, salt, iterations); ValueError if it is not one."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        raise ValueError("not a $7$ PBKDF2-SHA512 hash")
    salt, digest = base64.b64decode(parts[3]), base64.b64decode(parts[4])
    if len(salt) != SALT_BYTES or len(digest) != 64:
        raise ValueError(f"salt of {len(salt)} bytes or digest of {len(digest)}: the plugin needs 12 and 64")
    return {"password": parts[4], "salt": parts[3], "iterations": int(parts[2])}


def broker_document(
    admin: tuple[str, str], collector: tuple[str, str] | None, hosts: Iterable[HostLogin]
) -> dict[str, Any]:
    """The plugin's whole file: the admin and the collector (user, password), and each host with
    its stored hash. Anything not granted is refused, anonymous clients included."""
    clients = [{"username": admin[0], **stored_password(password_hash(admin[1])), "roles": [{"rolename": ADMIN_ROLE}]}]
    roles = [{"rolename": ADMIN_ROLE, "acls": ADMIN_ACLS}, {"rolename": COLLECTOR_ROLE, "acls": COLLECTOR_ACLS}]
    if collector is not None:
        clients.append(
            {
                "username": collector[0],
                **stored_password(password_hash(collector[1])),
                "roles": [{"rolename": COLLECTOR_ROLE}],
            }
        )
    for login in hosts:
        role = role_for(login.username)
        roles.append({"rolename": role, "acls": host_acls(login.province, login.commune, login.host)})
        clients.append(
            {"username": login.username, **stored_password(login.password_hash), "roles": [{"rolename": role}]}
        )
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": clients,
        "groups": [],
        "roles": roles,
    }


class DynsecAdmin:
    """An MQTT client of the plugin's admin user that sends commands and waits for their answers.

    One batch at a time (a lock); each command carries its own correlation id, and ``run`` raises
    DynsecError naming every command the broker refused. The password is never logged.
    """

    def __init__(self, settings: MqttSettings, username: str, password: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._refused = ""
        self._waiting: dict[str, dict[str, Any] | None] = {}
        self._answered = threading.Condition()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"commune-dynsec-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        client.username_pw_set(username, password)
        if settings.tls:
            client.tls_set(ca_certs=settings.ca_file or None)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_args: self._ready.set()
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client = client
        self._where = f"{settings.host}:{settings.port}"
        self._settings = settings

    def start(self) -> None:
        """Connect in the background (and again after a loss); ``run`` waits for the connection."""
        self._client.connect_async(self._settings.host, self._settings.port, keepalive=30)
        self._client.loop_start()

    def connect(self) -> None:
        """Connect now; DynsecError when the broker cannot be reached or refuses the admin."""
        self.start()
        self._wait_ready()

    def _wait_ready(self) -> None:
        if not self._ready.wait(self.timeout_s):
            why = self._refused or "no answer"
            raise DynsecError(f"the broker at {self._where} did not let the dynamic-security admin in: {why}")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            log.error("broker refused the dynamic-security admin", extra={"reason": str(reason)})
            return
        self._refused = ""
        client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_disconnect(self, *_args: Any) -> None:
        self._ready.clear()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            responses = json.loads(message.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable dynamic-security answer", extra={"size": len(message.payload)})
            return
        with self._answered:
            for response in responses:
                if isinstance(response, dict) and response.get("correlationData") in self._waiting:
                    self._waiting[response["correlationData"]] = response
            self._answered.notify_all()

    def run(self, commands: list[dict[str, Any]]) -> None:
        """Send ``commands`` in one message and wait for every answer; DynsecError if any failed."""
        if not commands:
            return
        self._wait_ready()
        with self._lock:
            ids = [uuid.uuid4().hex for _ in commands]
            with self._answered:
                self._waiting = dict.fromkeys(ids)
            body = json.dumps({"commands": [{**c, "correlationData": i} for c, i in zip(commands, ids, strict=True)]})
            if self._client.publish(CONTROL_TOPIC, body, qos=1).rc != mqtt.MQTT_ERR_SUCCESS:
                raise DynsecError(f"the broker at {self._where} cannot take commands now")
            with self._answered:
                done = self._answered.wait_for(
                    lambda: all(v is not None for v in self._waiting.values()), self.timeout_s
                )
                answers = [self._waiting[i] or {} for i in ids]
        refused = frozenset(n for n, answer in enumerate(answers) if answer.get("error"))
        if not done:
            raise DynsecError(f"the broker at {self._where} did not answer within {self.timeout_s:g} s", refused)
        failed = [f"{commands[n]['command']} {commands[n].get('username') or commands[n].get('rolename')}: "
                  f"{answers[n]['error']}" for n in sorted(refused)]  # fmt: skip
        if failed:
            raise DynsecError("the broker refused " + "; ".join(failed[:5]), refused)
