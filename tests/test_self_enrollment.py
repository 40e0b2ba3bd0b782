"""Self-enrolment on a real Mosquitto with the dynamic-security plugin and a real collector: an
agent enrols itself with its area's key and reports; a key is refused outside its area, after
expiry or revocation and past its maximum, each refusal counted by its reason; a host name is not
taken over; an address that keeps failing is refused; bulk enrolment lists every bad row first
and then enrols all; hosts enrolled the old way keep their passwords after ``dynsec-init``.

Each test sends from its own loopback address (127.0.0.N), so the failures one test makes do not
use up another's budget."""

from __future__ import annotations

import http.client
import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from realservices import DYNSEC_ADMIN, REPO, Agent, Collector, Influxd, Mosquitto, dynsec_broker, free_port, wait_until
from test_enrollment import Client, host_points

from collector.config import MqttSettings
from collector.registry.dynsec import DynsecAdmin
from collector.registry.enroll_keys import EnrollKeys
from collector.store import Store
from common.wire import encode, report_topic

pytestmark = pytest.mark.services  # the migration test starts its own broker
FAILURES_PER_ADDRESS = 8
REFILL_S = 4.0  # one more failure allowed per this many seconds: short, so a test can see the refill


@dataclass
class Site:
    broker: Mosquitto
    collector: Collector
    database: str
    state: Path

    def key(self, area: str, *extra: str) -> str:
        done = self.collector.cli("enroll-key", "add", "--area", area, "--expires", "1d", *extra)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def refusals(self, reason: str) -> float:
        return self.collector.metric(f'commune_collector_enroll_refused_total{{reason="{reason}"}}')


def enrolling_site(
    folder: Path, influxd: Influxd, http: dict[str, Any], enroll: dict[str, Any]
) -> tuple[Mosquitto, Collector, str]:
    """A secured broker (running) and a collector that enrols (not started), with the example
    areas (02473 is in yen-son, 02536 in son-duong); and the collector's database."""
    database = f"t_{uuid.uuid4().hex[:10]}"
    influxd.create_database(database)
    port = free_port()
    collector = Collector(
        folder / "collector",
        {
            "mqtt": {"port": port, "username": "collector", "password": "collector-pw", "client_id": f"c-{port}"},
            "influxdb": {"url": influxd.url, "database": database, "flush_interval_s": 0.2},
            "http": {"port": free_port(), **http},
            "state": {"path": str(folder / "state.sqlite")},
            "ingest": {"status_interval_s": 1},
            "enroll": {**DYNSEC_ADMIN, "broker_port": port, **enroll},
        },
    )
    done = collector.cli("registry", "import-areas", str(REPO / "config" / "areas.example.csv"))
    assert done.returncode == 0, done.stderr
    return dynsec_broker(collector, folder / "broker", port), collector, database


@pytest.fixture(scope="module")
def site(influxd: Influxd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One secured broker and one collector that enrols, its throttle quick to refill."""
    folder = tmp_path_factory.mktemp("self-enrol")
    limits = {"failures_per_address": FAILURES_PER_ADDRESS, "failure_refill_s": REFILL_S}
    broker, collector, database = enrolling_site(folder, influxd, {}, limits)
    collector.start()
    yield Site(broker, collector, database, folder / "state.sqlite")
    collector.stop()
    broker.stop()


def post_enroll(site: Site, key: str | None, source: str, **place: str) -> tuple[int, Any, Message]:
    """POST /api/v1/enroll from the loopback address ``source``; (status, body, headers)."""
    body = {"province": "08", "commune": "02473", "host": f"pc-any-{uuid.uuid4().hex[:6]}", **place}
    connection = http.client.HTTPConnection(
        "127.0.0.1", site.collector.http_port, timeout=30, source_address=(source, 0)
    )
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    try:
        connection.request("POST", "/api/v1/enroll", json.dumps(body), headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read()), response.headers
    finally:
        connection.close()


def agent_enroll(site: Site, key: str, host: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", "enroll", "--url", site.collector.url, "--key", key,
         "--province", "08", "--commune", "02473", "--host", host, "--out", str(out), "--insecure-http"],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip


def test_an_agent_enrols_itself_with_its_areas_key_reports_and_publishes_only_its_own_topics(
    site: Site, influxd: Influxd, tmp_path: Path
) -> None:
    key = site.key("yen-son", "--max-hosts", "5")
    out = tmp_path / "agent" / "agent.toml"
    out.parent.mkdir()
    done = agent_enroll(site, key, "pc-self", out)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    config = tomllib.loads(out.read_text())
    assert config["identity"] == {"province": "08", "commune": "02473", "host": "pc-self"}
    assert config["mqtt"]["username"] == "08-02473-pc-self" and config["mqtt"]["port"] == site.broker.port

    agent = Agent(tmp_path / "agent", {**config, "collect": {"interval_s": 1}, "probe": {"gateway": False},
                                       "spool": {"path": str(tmp_path / "agent" / "spool.sqlite")}})  # fmt: skip
    agent.start()
    try:
        wait_until(lambda: host_points(influxd, site.database, "pc-self") >= 2, 60, "pc-self points")
    finally:
        agent.stop()
    client = Client(site.broker.port, config["mqtt"]["username"], config["mqtt"]["password"])
    forged = encode({"v": 1, "ts": int(time.time()), "system": {"cpu_percent": 99.0}})
    try:
        assert client.publish(report_topic("08", "02473", "pc-other", "metrics"), forged).value == 0x87
        assert client.publish(report_topic("08", "02473", "pc-self", "metrics"), forged).value == 0
    finally:
        client.close()
    again = agent_enroll(site, key, "pc-self", tmp_path / "again.toml")
    assert again.returncode == 2 and "(409)" in again.stderr and "enrolled already" in again.stderr
    assert key not in again.stderr and key not in site.collector.log()
    assert config["mqtt"]["password"] not in site.collector.log()


def test_an_agent_that_cannot_write_its_config_asks_nothing_and_its_host_name_stays_free(
    site: Site, tmp_path: Path
) -> None:
    key = site.key("yen-son")
    unwritable = agent_enroll(site, key, "pc-nowrite", Path("/proc/agent.toml"))  # not even root can create it
    assert unwritable.returncode == 2 and "cannot be written" in unwritable.stderr, unwritable.stderr
    assert "08-02473-pc-nowrite" not in site.collector.log()
    done = agent_enroll(site, key, "pc-nowrite", tmp_path / "agent.toml")
    assert done.returncode == 0, done.stderr


def test_each_refusal_is_counted_by_its_reason(site: Site) -> None:
    source = "127.0.0.2"
    with Store(site.state) as store:  # a key that expired an hour ago, made as the CLI would
        _id, expired = EnrollKeys(store).add("yen-son", 60, None, now=time.time() - 3600)
    revoked = site.key("yen-son")
    listed = site.collector.cli("enroll-key", "list")
    revoked_id = [line.split("\t")[0] for line in listed.stdout.splitlines()][-1]
    assert site.collector.cli("enroll-key", "revoke", "--id", revoked_id).returncode == 0
    one_host = site.key("yen-son", "--max-hosts", "1")
    status, first, _h = post_enroll(site, one_host, source, host="pc-first")
    assert status == 200 and first["username"] == "08-02473-pc-first", first
    cases = [
        ("unknown_key", 403, "cek_not-a-key", {}),
        ("expired", 403, expired, {}),
        ("revoked", 403, revoked, {}),
        ("outside_area", 403, site.key("yen-son"), {"commune": "02536"}),
        ("max_hosts", 403, one_host, {}),
        ("host_taken", 409, site.key("yen-son"), {"host": "pc-first"}),
        ("bad_request", 400, site.key("yen-son"), {"commune": "00004"}),  # a Hà Nội ward, not in province 08
    ]
    assert len(cases) < FAILURES_PER_ADDRESS
    for reason, code, key, place in cases:
        before = site.refusals(reason)
        status, body, _h = post_enroll(site, key, source, **place)
        assert (status, site.refusals(reason)) == (code, before + 1), (reason, body)
        assert "password" not in body
    before = site.refusals("unknown_key")
    status, body, headers = post_enroll(site, None, "127.0.0.5")
    assert (status, headers["WWW-Authenticate"], site.refusals("unknown_key")) == (401, "Bearer", before + 1), body
    assert any("enrolment refused" in line and "127.0.0.5" in line for line in site.collector.log().splitlines())
    listed = site.collector.cli("enroll-key", "list").stdout
    assert f"{revoked_id}\tyen-son\t" in listed and "\trevoked" in listed and "\texpired" in listed
    assert expired not in site.collector.log() and one_host not in site.collector.log()


def test_an_address_that_keeps_failing_is_refused_until_its_budget_refills(site: Site) -> None:
    source, good = "127.0.0.3", site.key("yen-son")
    before = site.refusals("throttled")
    for _ in range(FAILURES_PER_ADDRESS):  # far quicker than one refill period
        assert post_enroll(site, "cek_wrong", source)[0] == 403
    status, body, headers = post_enroll(site, good, source)  # even a good key now
    assert status == 429 and "too many failed" in body["detail"], body
    assert 0 < int(headers["Retry-After"]) <= REFILL_S
    assert site.refusals("throttled") == before + 1
    assert post_enroll(site, good, "127.0.0.4")[0] == 200  # another address is not slowed
    wait_until(lambda: post_enroll(site, good, source)[0] == 200, 6 * REFILL_S, "the budget to refill", 0.5)


def test_bulk_enrolment_lists_every_bad_row_first_then_enrols_all(site: Site, tmp_path: Path) -> None:
    taken = site.collector.cli("enroll", "--province", "08", "--commune", "02473", "--host", "pc-taken",
                               "--out", str(tmp_path / "taken.toml"))  # fmt: skip
    assert taken.returncode == 0, taken.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "province,commune,host\n08,02473,pc-b1\n08,00004,pc-b2\n08,02473,pc b3\n08,2473,pc-b1\n08,02473,pc-taken\n"
    )
    done = site.collector.cli("enroll", "--from", str(bad), "--out-dir", str(tmp_path / "configs"))
    assert done.returncode == 2, done.stderr
    assert [line.split(":")[0].strip() for line in done.stderr.splitlines()[1:]] == [
        "line 3", "line 4", "line 5", "line 6"]  # fmt: skip
    assert "is on line 2 too" in done.stderr and "enrolled already" in done.stderr
    assert not (tmp_path / "configs").exists()
    with sqlite3.connect(site.state) as db:
        assert db.execute("SELECT count(*) FROM mqtt_credentials WHERE host LIKE 'pc-b%'").fetchone() == (0,)

    good = tmp_path / "good.csv"
    good.write_text("province,commune,host\n" + "".join(f"08,02536,pc-bulk-{n}\n" for n in range(60)))
    done = site.collector.cli("enroll", "--from", str(good), "--out-dir", str(tmp_path / "configs"))
    assert done.returncode == 0, done.stderr
    written = sorted((tmp_path / "configs").iterdir())
    assert len(written) == 60 and all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in written)
    last = tomllib.loads((tmp_path / "configs" / "08-02536-pc-bulk-59.toml").read_text())["mqtt"]
    client = Client(site.broker.port, last["username"], last["password"])  # the second batch of 50
    assert client.connack is not None and not client.connack.is_failure
    client.close()


def test_a_bulk_batch_the_broker_refuses_is_taken_back_and_the_hosts_left_are_listed_for_a_rerun(
    site: Site, tmp_path: Path
) -> None:
    """The first batch of 50 is enrolled and handed out; the second holds a name the broker has
    already (made behind the state file's back), so the broker refuses it: that batch is taken off
    the broker again, the outsider's user is left alone, and a rerun of the rest succeeds."""
    admin = DynsecAdmin(MqttSettings(port=site.broker.port), DYNSEC_ADMIN["admin_username"],
                        DYNSEC_ADMIN["admin_password"], 10)  # fmt: skip
    admin.connect()
    try:
        admin.run([{"command": "createClient", "username": "08-02536-pc-half-55", "password": "outsider-pw"}])
    finally:
        admin.close()
    hosts = tmp_path / "hosts.csv"
    hosts.write_text("province,commune,host\n" + "".join(f"08,02536,pc-half-{n}\n" for n in range(60)))
    configs = tmp_path / "configs"
    done = site.collector.cli("enroll", "--from", str(hosts), "--out-dir", str(configs))
    assert done.returncode == 1, done.stderr
    assert "50 hosts enrolled" in done.stderr and "createClient 08-02536-pc-half-55" in done.stderr, done.stderr
    written = sorted(p.name for p in configs.glob("*.toml"))
    assert written == sorted(f"08-02536-pc-half-{n}.toml" for n in range(50))
    assert all(stat.S_IMODE(os.stat(configs / name).st_mode) == 0o600 for name in written)
    first = tomllib.loads((configs / "08-02536-pc-half-49.toml").read_text())["mqtt"]
    with sqlite3.connect(site.state) as db:
        assert db.execute("SELECT count(*) FROM mqtt_credentials WHERE host LIKE 'pc-half-%'").fetchone() == (50,)
    left = (configs / "not-enrolled.csv").read_text().splitlines()
    assert left == ["province,commune,host", *(f"08,02536,pc-half-{n}" for n in range(50, 60))]
    for username, password in ((first["username"], first["password"]), ("08-02536-pc-half-55", "outsider-pw")):
        client = Client(site.broker.port, username, password)
        assert client.connack is not None and not client.connack.is_failure, username
        client.close()

    rest = tmp_path / "rest.csv"
    rest.write_text("\n".join(line for line in left if not line.endswith("pc-half-55")) + "\n")
    again = site.collector.cli("enroll", "--from", str(rest), "--out-dir", str(configs))
    assert again.returncode == 0, again.stderr  # the refused batch's roles and users were deleted
    assert len(list(configs.glob("*.toml"))) == 59


def test_hosts_enrolled_with_the_old_password_file_keep_their_passwords_in_dynamic_security(
    tmp_path: Path,
) -> None:
    """The 0.x way wrote ``mosquitto_passwd`` hashes; dynsec-init carries them over unchanged."""
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "08-02473-pc-old", "old-password"], check=True)
    old_hash = passwd.read_text().strip().split(":", 1)[1]
    state = tmp_path / "state.sqlite"
    with Store(state) as store:
        store.execute(
            "INSERT INTO mqtt_credentials (username, province, commune, host, password_hash, enrolled_at) "
            "VALUES ('08-02473-pc-old', '08', '02473', 'pc-old', ?, 0)",
            (old_hash,),
        )
    port = free_port()
    collector = Collector(tmp_path / "collector", {"mqtt": {"port": port}, "http": {"port": free_port()},
                                                    "state": {"path": str(state)}, "enroll": DYNSEC_ADMIN})  # fmt: skip
    broker = dynsec_broker(collector, tmp_path / "broker", port)
    try:
        old = Client(broker.port, "08-02473-pc-old", "old-password")
        assert old.connack is not None and not old.connack.is_failure
        assert not old.publish(report_topic("08", "02473", "pc-old", "status"), b"online").is_failure
        assert old.publish(report_topic("08", "02473", "pc-new", "status"), b"online").value == 0x87
        old.close()
        wrong = Client(broker.port, "08-02473-pc-old", "not-the-password")
        assert wrong.connack is not None and wrong.connack.is_failure
        wrong.close()
    finally:
        broker.stop()
    again = collector.cli("dynsec-init", "--out", str(broker.dynsec_file))
    assert again.returncode == 2 and "exists" in again.stderr
