"""Typed agent configuration loaded from TOML, with safe defaults and clear errors.

The agent does not use pydantic (its install must stay small on old PCs): each section is a
frozen dataclass and ``load_config`` checks types and ranges by hand.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from agent.peripherals.classify import KnownIds, KnownIdsError, known_id
from agent.speedtests.schedule import parse_window
from common.wire import ACTIONS, COMMUNE_RE, HOST_RE, LABEL_RE, PROVINCE_RE

if sys.platform == "win32":  # %ProgramData%\commune-agent (agent/windows/paths.py); Linux never imports it
    from agent.windows.paths import spool_path

    DEFAULT_SPOOL = str(spool_path())
else:
    DEFAULT_SPOOL = "/var/lib/commune-agent/spool.sqlite"

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.8 to 3.10 (Ubuntu 20.04, Debian 11): the same parser, published as tomli
    import tomli as tomllib


class ConfigError(ValueError):
    """The configuration file cannot be used; the message says which key and why."""


@dataclass(frozen=True)
class IdentityConfig:
    province: str = ""
    commune: str = ""
    host: str = ""
    role: str = "pc"  # "line-probe": the one agent per commune that runs speed tests


@dataclass(frozen=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str = ""
    password: str = field(default="", repr=False)
    tls: bool = False
    ca_file: str = ""
    keepalive_s: int = 60


@dataclass(frozen=True)
class CollectConfig:
    interval_s: float = 30.0
    inventory_interval_s: float = 86400.0


@dataclass(frozen=True)
class SpoolConfig:
    path: str = DEFAULT_SPOOL
    max_bytes: int = 50 * 1024 * 1024
    max_age_s: float = 7 * 86400.0
    drain_per_s: float = 50.0
    memory_bytes: int = 2 * 1024 * 1024  # reports held in memory while the spool cannot be written
    retry_s: float = 30.0  # how often a failed spool is tried again
    keep_corrupt: int = 3  # corrupt spool files kept (moved aside) for inspection
    keep_corrupt_bytes: int = 64 * 1024 * 1024  # and at most this many bytes of them
    ack_timeout_s: float = 120.0  # a sent report unacknowledged this long is sent again (see publisher)
    ack_wait_s: float = 60.0  # connected this long without hearing an acknowledging collector: broker-level release


EXTRA_ID_KEYS = {"vendor_id", "product_id", "kind", "model"}
PROBE_METHODS = ("ping", "dns", "http")
PROBE_SCOPES = ("gateway", "wan", "internet")


@dataclass(frozen=True)
class ProbeTarget:
    name: str
    method: str  # ping, dns or http
    address: str  # host or IP (ping), name (dns), URL (http)
    scope: str  # gateway, wan (government network) or internet


@dataclass(frozen=True)
class ProbeConfig:
    interval_s: float = 60.0
    ping_count: int = 10
    timeout_s: float = 5.0
    gateway: bool = True
    targets: list[Any] = field(default_factory=list)  # ProbeTarget after load_config


@dataclass(frozen=True)
class SpeedtestConfig:
    modes: list[Any] = field(default_factory=lambda: ["wan", "internet"])
    wan_url: str = ""  # the collector's base URL, e.g. http://10.8.0.10:8080
    windows: list[Any] = field(default_factory=lambda: ["06:00-07:30", "12:00-13:00", "17:30-19:00"])
    busy_threshold_mbps: float = 5.0
    busy_nic: str = ""  # default: the NIC holding the default route
    daily_byte_cap_mb: float = 1500.0
    timeout_s: float = 10.0
    check_interval_s: float = 30.0
    download_sides: list[Any] = field(default_factory=lambda: [350, 500, 750, 1000, 1500, 2000, 2500, 3000])
    download_count: int = 4
    upload_sizes: int = 5  # how many of the upload sizes (32 kB, 128 kB, 256 kB, 512 kB, 1 MB, 7 MB) to use
    upload_count: int = 8
    threads: int = 4
    length_s: float = 10.0
    state_path: str = ""  # default: speedtest.json next to the spool


@dataclass(frozen=True)
class PeripheralsConfig:
    enabled: bool = True
    sysfs_root: str = "/sys/bus/usb/devices"
    poll_interval_s: float = 5.0  # how often the USB devices are listed (a report only on a change)
    events: bool = True  # Linux: list them at each kernel USB device event instead, and every rescan_interval_s
    rescan_interval_s: float = 60.0  # with events: the listing that catches a missed event
    report_interval_s: float = 3600.0  # a report also this often without a change
    extra_ids: list[Any] = field(default_factory=list)  # tables vendor_id, product_id, kind, model
    pcsc: bool = True  # watch smart-card readers through PC/SC where pyscard and the service exist
    pcsc_poll_s: float = 15.0  # seconds between looks at the readers (a connection between two looks is missed)


@dataclass(frozen=True)
class DiskHealthConfig:
    enabled: bool = True  # Linux: each disk's S.M.A.R.T. through smartctl (smartmontools)
    interval_s: float = 6 * 3600.0  # at start, then this often
    smartctl: str = "smartctl"  # the program, found on PATH, or its full path
    timeout_s: float = 60.0  # per disk: a sleeping HDD spins up first
    sysfs_root: str = "/sys/block"


@dataclass(frozen=True)
class ActionsConfig:
    # the on-demand actions the collector may ask for (agent/actions.py); all four only measure
    allow: list[str] = field(default_factory=lambda: list(ACTIONS))


@dataclass(frozen=True)
class AgentConfig:
    identity: IdentityConfig
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    spool: SpoolConfig = field(default_factory=SpoolConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    speedtest: SpeedtestConfig = field(default_factory=SpeedtestConfig)
    peripherals: PeripheralsConfig = field(default_factory=PeripheralsConfig)
    disk_health: DiskHealthConfig = field(default_factory=DiskHealthConfig)
    actions: ActionsConfig = field(default_factory=ActionsConfig)


SECTIONS: dict[str, type[Any]] = {
    "identity": IdentityConfig,
    "mqtt": MqttConfig,
    "collect": CollectConfig,
    "spool": SpoolConfig,
    "probe": ProbeConfig,
    "speedtest": SpeedtestConfig,
    "peripherals": PeripheralsConfig,
    "disk_health": DiskHealthConfig,
    "actions": ActionsConfig,
}


def load_config(path: str | Path) -> AgentConfig:
    """Read and check an agent TOML file; raises ConfigError saying what to fix."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; copy config/agent.example.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return config_from_dict(raw)


def config_from_dict(raw: dict[str, Any]) -> AgentConfig:
    """Build an AgentConfig from parsed TOML, checking every key."""
    unknown = set(raw) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"unknown section(s) {sorted(unknown)}; known: {sorted(SECTIONS)}")
    built = {name: _section(name, cls, raw.get(name, {})) for name, cls in SECTIONS.items()}
    identity = _complete_identity(built["identity"])
    probe = replace(built["probe"], targets=_probe_targets(built["probe"].targets))
    config = AgentConfig(
        identity=identity,
        mqtt=built["mqtt"],
        collect=built["collect"],
        spool=built["spool"],
        probe=probe,
        speedtest=built["speedtest"],
        peripherals=built["peripherals"],
        disk_health=built["disk_health"],
        actions=built["actions"],
    )
    _check_ranges(config)
    return config


def _section(name: str, cls: type[Any], values: Any) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"[{name}] must be a table")
    known = {f.name: f for f in fields(cls)}
    for key, value in values.items():
        spec = known.get(key)
        if spec is None:
            raise ConfigError(f"[{name}] {key} is not a known option; known: {sorted(known)}")
        expected = type(getattr(cls(), key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            values[key] = float(value)
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"[{name}] {key} = {value!r} should be a {expected.__name__}")
    return cls(**values)


def _probe_targets(raw: list[Any]) -> list[ProbeTarget]:
    targets = []
    for index, item in enumerate(raw):
        where = f"[probe] targets[{index}]"
        if not isinstance(item, dict) or set(item) != {"name", "method", "address", "scope"}:
            raise ConfigError(f"{where} must be a table with exactly name, method, address and scope")
        if not all(isinstance(value, str) for value in item.values()):
            raise ConfigError(f"{where}: name, method, address and scope are strings")
        if not LABEL_RE.match(item["name"]) or item["name"] == "gateway":
            raise ConfigError(f"{where} name = {item['name']!r} must match {LABEL_RE.pattern} and not be 'gateway'")
        if item["method"] not in PROBE_METHODS:
            raise ConfigError(f"{where} method = {item['method']!r} must be one of {', '.join(PROBE_METHODS)}")
        if item["scope"] not in PROBE_SCOPES:
            raise ConfigError(f"{where} scope = {item['scope']!r} must be one of {', '.join(PROBE_SCOPES)}")
        if item["method"] == "http" and not item["address"].startswith(("http://", "https://")):
            raise ConfigError(f"{where} address = {item['address']!r} must be an http:// or https:// URL")
        targets.append(ProbeTarget(**item))
    if len({t.name for t in targets}) != len(targets):
        raise ConfigError("[probe] targets: every name must be different")
    return targets


def _check_speedtest(config: SpeedtestConfig) -> None:
    for mode in config.modes:
        if mode not in ("wan", "internet"):
            raise ConfigError(f"[speedtest] modes: {mode!r} is not wan or internet")
    for window in config.windows:
        try:
            parse_window(str(window))
        except ValueError as exc:
            raise ConfigError(f"[speedtest] windows: {exc}") from None
    sides = config.download_sides
    if not sides or not all(isinstance(side, int) and 1 <= side <= 4000 for side in sides):
        raise ConfigError("[speedtest] download_sides must be whole numbers from 1 to 4000")
    if not 1 <= config.upload_sizes <= 6 or config.threads < 1 or config.download_count < 1 or config.upload_count < 1:
        raise ConfigError("[speedtest] upload_sizes is 1 to 6; threads and counts at least 1")
    if config.wan_url and not config.wan_url.startswith(("http://", "https://")):
        raise ConfigError(f"[speedtest] wan_url = {config.wan_url!r} must be an http:// or https:// URL")


def _check_peripherals(config: PeripheralsConfig) -> None:
    if not 0.5 <= config.pcsc_poll_s <= 300:
        raise ConfigError(f"[peripherals] pcsc_poll_s = {config.pcsc_poll_s} must be from 0.5 to 300 seconds")
    if config.poll_interval_s < 1 or config.rescan_interval_s < 1 or config.report_interval_s < 60:
        raise ConfigError(
            "[peripherals] poll_interval_s and rescan_interval_s must be at least 1 and report_interval_s at least 60"
        )
    extra_known_ids(config)


def extra_known_ids(config: PeripheralsConfig) -> KnownIds:
    """``[peripherals] extra_ids`` as known ids; raises ConfigError naming the bad entry."""
    known: KnownIds = {}
    for index, item in enumerate(config.extra_ids):
        where = f"[peripherals] extra_ids[{index}]"
        if not isinstance(item, dict) or not {"vendor_id", "product_id", "kind"} <= set(item) <= EXTRA_ID_KEYS:
            raise ConfigError(f"{where} must be a table with vendor_id, product_id, kind and optionally model")
        try:
            key, entry = known_id(item["vendor_id"], item["product_id"], item["kind"], item.get("model", ""), where)
        except KnownIdsError as exc:
            raise ConfigError(str(exc)) from None
        known[key] = entry
    return known


def _complete_identity(identity: IdentityConfig) -> IdentityConfig:
    host = identity.host or socket.gethostname().split(".")[0]
    if not PROVINCE_RE.match(identity.province):
        raise ConfigError(f'[identity] province = "{identity.province}" must be a two-digit code, e.g. "08"')
    if not COMMUNE_RE.match(identity.commune):
        raise ConfigError(f'[identity] commune = "{identity.commune}" must be a five-digit code, e.g. "02473"')
    if not HOST_RE.match(host):
        raise ConfigError(f'[identity] host = "{host}" may only hold letters, digits, "_", "." and "-"')
    return IdentityConfig(identity.province, identity.commune, host, identity.role)


def _check_ranges(config: AgentConfig) -> None:
    if config.collect.interval_s < 1:
        raise ConfigError(f"[collect] interval_s = {config.collect.interval_s} must be at least 1")
    if not 1 <= config.mqtt.port <= 65535:
        raise ConfigError(f"[mqtt] port = {config.mqtt.port} is not a TCP port")
    if config.spool.max_bytes < 1024 * 1024:
        raise ConfigError(f"[spool] max_bytes = {config.spool.max_bytes} must be at least 1 MiB")
    if config.probe.interval_s < 1 or not 1 <= config.probe.ping_count <= 100 or config.probe.timeout_s <= 0:
        raise ConfigError("[probe] interval_s must be at least 1, ping_count 1 to 100, timeout_s positive")
    _check_speedtest(config.speedtest)
    _check_peripherals(config.peripherals)
    for name in config.actions.allow:
        if name not in ACTIONS:
            raise ConfigError(f"[actions] allow: {name!r} is not an action; the actions are {', '.join(ACTIONS)}")
    if config.identity.role not in ("pc", "line-probe"):
        raise ConfigError(f'[identity] role = "{config.identity.role}" must be "pc" or "line-probe"')
    if config.spool.drain_per_s <= 0:
        raise ConfigError(f"[spool] drain_per_s = {config.spool.drain_per_s} must be positive")
    spool = config.spool
    if spool.memory_bytes < 64 * 1024 or spool.retry_s < 1 or spool.keep_corrupt < 0 or spool.keep_corrupt_bytes < 0:
        raise ConfigError(
            "[spool] memory_bytes must be at least 65536, retry_s at least 1, "
            "keep_corrupt and keep_corrupt_bytes 0 or more"
        )
    health = config.disk_health
    if health.interval_s < 60 or health.timeout_s <= 0 or not health.smartctl:
        raise ConfigError("[disk_health] interval_s must be at least 60, timeout_s positive and smartctl not empty")
    if config.spool.ack_timeout_s < 1 or config.spool.ack_wait_s < 0:
        raise ConfigError("[spool] ack_timeout_s must be at least 1 and ack_wait_s 0 or more")
