"""Typed collector configuration: TOML file, then COMMUNE_COLLECTOR_* environment overrides."""

from __future__ import annotations

import math
import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from collector.alerting.conditions import RULES
from collector.localtime import LOCAL_ZONE, PeriodError, office_hours
from collector.store import AUDIT_FLOOR_DAYS


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str = ""
    password: SecretStr = SecretStr("")
    tls: bool = False
    ca_file: str = ""
    client_id: str = "commune-collector"
    session_expiry_s: int = Field(7 * 86400, ge=0)
    receive_maximum: int = Field(20000, ge=1, le=65535)
    acks: bool = True
    ack_interval_s: float = Field(1.0, ge=1.0)
    provinces: list[str] = []

    @field_validator("provinces")
    @classmethod
    def provinces_are_two_digit_codes(cls, value: list[str]) -> list[str]:
        bad = [code for code in value if not re.fullmatch(r"[0-9]{2}", code)]
        if bad:
            raise ValueError(f'province codes are two digits, like "08"; not {", ".join(map(repr, bad))}')
        return sorted(set(value))


class InfluxSettings(Section):
    url: str = "http://127.0.0.1:8086"
    database: str = "commune"
    username: str = ""
    password: SecretStr = SecretStr("")
    token: SecretStr = SecretStr("")
    batch_size: int = Field(5000, ge=1, le=100_000)
    flush_interval_s: float = Field(1.0, gt=0)
    writes_in_flight: int = Field(2, ge=1, le=8)
    timeout_s: float = Field(10.0, gt=0)
    queue_max_points: int = Field(500_000, ge=1000)
    buffer_path: str = ""
    buffer_max_mb: int = Field(1024, ge=1)
    raw_retention: str = "30d"
    rollup_retention: str = "400d"


class ApiTokenSettings(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    role: Literal["viewer", "admin"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the token, never the token")
    area: str = Field("", pattern=r"^([A-Za-z0-9_.:-]{1,64})?$", description="a viewer sees only this area")
    commune: str = Field("", pattern=r"^([0-9]{5})?$", description="a viewer sees only this commune")

    @model_validator(mode="after")
    def _one_scope_on_a_viewer(self) -> ApiTokenSettings:
        if self.area and self.commune:
            raise ValueError(f"token {self.name}: scope it to an area or a commune, not both")
        if (self.area or self.commune) and self.role != "viewer":
            raise ValueError(f"token {self.name}: only a viewer token can be scoped (area or commune)")
        return self

    def scope(self) -> str:
        """As the token store keeps it: "" for the whole province, ``area:CODE`` or ``commune:CODE``."""
        return f"area:{self.area}" if self.area else f"commune:{self.commune}" if self.commune else ""


class HttpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tokens: list[ApiTokenSettings] = []
    public_status_page: bool = True
    tls_cert_file: str = ""
    tls_key_file: str = ""

    @model_validator(mode="after")
    def _tls_pair(self) -> HttpSettings:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file go together: set both to serve HTTPS, or neither")
        return self


class StateSettings(Section):
    path: str = "/var/lib/commune-collector/state.sqlite"
    default_area: str = Field("unassigned", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")


class IngestSettings(Section):
    max_clock_skew_s: float = Field(300.0, gt=0)
    max_age_s: float = Field(8 * 86400.0, gt=0)
    status_interval_s: float = Field(30.0, ge=1)
    max_values_per_tag: int = Field(32, ge=1, le=10_000)
    values_window_s: float = Field(86400.0, gt=0)
    backlog_after_s: float = Field(300.0, gt=0)


class EnrollSettings(Section):
    admin_username: str = ""
    admin_password: SecretStr = SecretStr("")
    response_timeout_s: float = Field(10.0, gt=0)
    broker_host: str = "127.0.0.1"
    broker_port: int = Field(1883, ge=1, le=65535)
    tls: bool = False
    agent_ca_file: str = ""
    ca_pem_file: str = ""
    failures_per_address: int = Field(10, ge=1)
    failure_refill_s: float = Field(60.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _drop_file_options(cls, data: Any) -> Any:
        """``password_file`` and ``acl_file`` named the files of the old way (before dynamic security);
        a config that still has them loads, and they are ignored."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if key not in ("password_file", "acl_file")}
        return data


class SpeedtestEndpointSettings(Section):
    endpoint_rate_mbps: float = Field(0.0, ge=0)
    upload_idle_s: float = Field(2.0, gt=0, le=60)
    max_concurrent_uploads: int = Field(8, ge=1, le=1000)


class FleetSettings(Section):
    evaluate_interval_s: float = Field(5.0, gt=0)
    offline_after_intervals: float = Field(3.0, ge=1)
    restart_grace_s: float = Field(90.0, ge=0)
    grace_while_draining_max_s: float = Field(1800.0, ge=0)
    line_down_probe_s: float = Field(180.0, ge=0)
    loss_percent_max: float = Field(5.0, ge=0)
    rtt_ms_max: float = Field(150.0, gt=0)
    degraded_window_s: float = Field(900.0, gt=0)
    speedtest_min_percent: float = Field(50.0, ge=0)
    disk_full_percent: float = Field(90.0, gt=0, le=100)
    disk_bad_sectors: float = Field(1.0, ge=0)  # disk_failing above this many reallocated + pending sectors
    disk_busy_percent: float = Field(90.0, gt=0, le=100)  # disk_slow: the system disk busy above this share
    disk_slow_minutes: float = Field(10.0, ge=0)  # ... for this long
    memory_percent: float = Field(90.0, gt=0, le=100)
    swap_percent: float = Field(50.0, ge=0, le=100)
    memory_sustained_s: float = Field(600.0, ge=0)
    clock_settle_s: float = Field(600.0, gt=0)
    clock_jitter_s: float = Field(10.0, ge=0)
    cpu_percent: float = Field(95.0, gt=0, le=100)
    cpu_sustained_s: float = Field(900.0, ge=0)
    temperature_c: float = Field(85.0, gt=0)
    reboots_per_day: int = Field(3, ge=1)
    gaps_per_day: int = Field(3, ge=1)
    min_ram_gb: float = Field(4.0, ge=0)
    min_cpu_cores: int = Field(2, ge=0)
    unused_after_days: int = Field(7, ge=1)
    unused_below_mb_per_day: float = Field(50.0, ge=0)
    save_interval_s: float = Field(30.0, gt=0)
    equipment_unused_after_days: int = Field(14, ge=1)
    outage_decide_max_s: float = Field(1800.0, gt=0)
    forget_after_days: float = Field(30.0, gt=0)


# A cut line is seen PC by PC: each Last Will comes when the broker's keepalive runs out, up to
# one report interval apart, so host_offline waits longer than that for line_down to take over.
DEFAULT_FOR_S = {"host_offline": 90.0, "line_degraded": 300.0, "host_degraded": 600.0}


SCOPE_KEYS = ("area", "commune", "host", "rule")  # what a silence or maintenance window matches on
WINDOW_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")


def check_scope(scope: dict[str, str]) -> None:
    """A silence's or maintenance window's scope: only SCOPE_KEYS, and a rule that exists."""
    unknown = sorted(set(scope) - set(SCOPE_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; use any of {', '.join(SCOPE_KEYS)}")
    if scope.get("rule", RULES[0]) not in RULES:
        raise ValueError(f"unknown rule {scope['rule'][:40]!r}; rules are {', '.join(RULES)}")


def window_minutes(time_range: str) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` as minutes of the day (start, end); the end may be earlier (past midnight)."""
    match = WINDOW_TIME.fullmatch(time_range)
    if match is None:
        raise ValueError(f"time {time_range[:20]!r} is not HH:MM-HH:MM (00:00 to 23:59)")
    start_h, start_m, end_h, end_m = (int(g) for g in match.groups())
    return start_h * 60 + start_m, end_h * 60 + end_m


class AlertSettings(Section):
    default_for_s: float = Field(0.0, ge=0)
    for_s: dict[str, float] = DEFAULT_FOR_S
    flap_window_s: float = Field(900.0, ge=0)
    flap_threshold: int = Field(3, ge=1)
    keep_resolved_days: float = Field(180.0, ge=1)
    maintenance: list[dict[str, str]] = []

    @field_validator("for_s")
    @classmethod
    def rules_left_out_keep_their_default(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(RULES))
        if unknown:
            raise ValueError(f"unknown rule(s) {', '.join(unknown)}; rules are {', '.join(RULES)}")
        if not all(0 <= seconds < math.inf for seconds in value.values()):
            raise ValueError("for_s values are seconds, 0 or more")
        return {**DEFAULT_FOR_S, **value}

    @field_validator("maintenance")
    @classmethod
    def windows_are_daily_times_with_an_optional_scope(cls, value: list[dict[str, str]]) -> list[dict[str, str]]:
        for number, window in enumerate(value, 1):
            try:
                check_scope({k: v for k, v in window.items() if k != "time"})
                start, end = window_minutes(window.get("time", ""))
            except ValueError as exc:
                raise ValueError(f"window {number}: {exc}") from None
            if start == end:
                raise ValueError(f"window {number}: time {window['time']!r} starts where it ends")
        return value


class NotifySettings(Section):
    language: Literal["vi", "en"] = "vi"
    group_wait_s: float = Field(30.0, ge=0)
    cause_wait_s: float = Field(120.0, ge=0)  # a line_down resolve waits this long for its outage's cause
    webhook_urls: list[str] = []
    smtp_host: str = ""
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    email_from: str = "commune-monitor@localhost"
    email_to: list[str] = []
    telegram_api_url: str = "https://api.telegram.org"
    telegram_bot_token: SecretStr = SecretStr("")
    telegram_chat_ids: list[str] = []


class GrafanaSettings(Section):
    url: str = "http://127.0.0.1:3000"
    token: SecretStr = SecretStr("")
    username: str = ""
    password: SecretStr = SecretStr("")
    language: Literal["vi", "en"] = "vi"
    influxdb_url: str = ""  # as Grafana reaches InfluxDB; empty: [influxdb] url
    timeout_s: float = Field(10.0, gt=0)


class ReportSettings(Section):
    language: Literal["vi", "en"] = "vi"
    timezone: str = LOCAL_ZONE
    office_hours: list[str] = ["07:30-11:30", "13:30-17:00"]
    workdays: list[int] = [1, 2, 3, 4, 5]
    holidays: list[date] = []
    down_hours_over: float = Field(8.0, ge=0)
    degraded_days_over: int = Field(14, ge=1)
    replacement_top: int = Field(10, ge=1, le=1000)
    email_to: list[str] = []
    email_at: str = Field("07:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    query_timeout_s: float = Field(120.0, gt=0)

    @model_validator(mode="after")
    def office_hours_make_sense(self) -> ReportSettings:
        try:
            office_hours(self.timezone, self.office_hours, self.workdays, self.holidays)
        except PeriodError as exc:
            raise ValueError(str(exc)) from None
        return self


class AuditSettings(Section):
    # entries older than this are dropped; at least the floor of 400 days, which nothing turns off
    retention_days: int = Field(AUDIT_FLOOR_DAYS, ge=AUDIT_FLOOR_DAYS)


class ActionsSettings(Section):
    # "test now" from the desk (collector/actions.py): a request with neither answer nor result after
    # this long reads "no answer in N s"
    answer_timeout_s: float = Field(120.0, ge=5, le=3600)
    # how long POST .../actions/{name} waits for the agent's first answer (accepted, or refused: 409)
    answer_wait_s: float = Field(3.0, ge=0, le=30)
    # requests (with their results) are kept this many days
    keep_days: float = Field(30.0, gt=0, le=400)


class CollectorConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMMUNE_COLLECTOR_", env_nested_delimiter="__", extra="forbid")

    mqtt: MqttSettings = MqttSettings()
    influxdb: InfluxSettings = InfluxSettings()
    http: HttpSettings = HttpSettings()
    state: StateSettings = StateSettings()
    ingest: IngestSettings = IngestSettings()
    enroll: EnrollSettings = EnrollSettings()
    speedtest: SpeedtestEndpointSettings = SpeedtestEndpointSettings()
    fleet: FleetSettings = FleetSettings()
    alerts: AlertSettings = AlertSettings()
    notify: NotifySettings = NotifySettings()
    grafana: GrafanaSettings = GrafanaSettings()
    report: ReportSettings = ReportSettings()
    audit: AuditSettings = AuditSettings()
    actions: ActionsSettings = ActionsSettings()


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which key and why."""


def load_config(path: str | Path) -> CollectorConfig:
    try:
        raw: dict[str, Any] = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; copy config/collector.example.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    try:
        return CollectorConfig(**raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"config file {path}: {problems}") from None
