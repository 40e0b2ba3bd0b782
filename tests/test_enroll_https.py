"""Self-enrolment over HTTPS: the collector serves ``[http] tls_cert_file``/``tls_key_file``, and
``commune-agent enroll`` verifies it with ``--ca-file`` (a real CA made with openssl here), refuses
a collector whose certificate it cannot verify, and refuses plain ``http://`` unless told."""

from __future__ import annotations

import ssl
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from realservices import (
    REPO,
    Collector,
    Influxd,
    Mosquitto,
    Program,
    wait_until,
)
from test_self_enrollment import enrolling_site
from test_tls import make_ca, make_server_cert

pytestmark = pytest.mark.services


class HttpsSite:
    def __init__(self, broker: Mosquitto, collector: Collector, certs: Path) -> None:
        self.broker, self.collector, self.certs = broker, collector, certs
        self.url = f"https://127.0.0.1:{collector.http_port}"

    def enroll(self, host: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        key = self.collector.cli("enroll-key", "add", "--area", "yen-son", "--expires", "1d").stdout.strip()
        return subprocess.run(
            [sys.executable, "-m", "agent.cli", "enroll", "--key", key, "--province", "08", "--commune", "02473",
             "--host", host, "--out", str(out), *extra],
            capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
        )  # fmt: skip


def answers(url: str, context: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=5, context=context) as response:
            return response.status in (200, 503)
    except OSError:
        return False


@pytest.fixture(scope="module")
def site(influxd: Influxd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsSite]:
    folder = tmp_path_factory.mktemp("https-enrol")
    certs = folder / "certs"
    certs.mkdir()
    make_ca(certs, "province-ca")
    make_ca(certs, "other-ca")
    make_server_cert(certs, "province-ca")
    tls = {"tls_cert_file": str(certs / "server.crt"), "tls_key_file": str(certs / "server.key")}
    broker, collector, _database = enrolling_site(folder, influxd, tls, {})
    Program.start(collector)  # Collector.start polls plain HTTP
    https = HttpsSite(broker, collector, certs)
    trusting = ssl.create_default_context(cafile=str(certs / "province-ca.crt"))
    try:
        wait_until(lambda: answers(https.url, trusting) or not collector.running(), 30, "collector on HTTPS")
        assert collector.running(), collector.log()
        yield https
    finally:
        collector.stop()
        broker.stop()


def test_an_agent_enrols_over_https_verifying_the_collector_with_its_ca_file(site: HttpsSite, tmp_path: Path) -> None:
    out = tmp_path / "agent.toml"
    done = site.enroll("pc-https", out, "--url", site.url, "--ca-file", str(site.certs / "province-ca.crt"))
    assert done.returncode == 0, done.stderr
    assert tomllib.loads(out.read_text())["mqtt"]["username"] == "08-02473-pc-https"


def test_a_collector_whose_certificate_the_agent_cannot_verify_gets_nothing(site: HttpsSite, tmp_path: Path) -> None:
    for extra in (["--ca-file", str(site.certs / "other-ca.crt")], []):  # another CA; the system's CAs
        done = site.enroll("pc-untrusted", tmp_path / "agent.toml", "--url", site.url, *extra)
        assert done.returncode == 2 and "CERTIFICATE_VERIFY_FAILED" in done.stderr, done.stderr
        assert not (tmp_path / "agent.toml").exists()
    assert "08-02473-pc-untrusted" not in site.collector.log()


def test_plain_http_is_refused_with_one_line_unless_insecure_http_is_given(site: HttpsSite, tmp_path: Path) -> None:
    plain = f"http://127.0.0.1:{site.collector.http_port}"
    done = site.enroll("pc-plain", tmp_path / "agent.toml", "--url", plain)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--insecure-http" in done.stderr, done.stderr
    assert not (tmp_path / "agent.toml").exists()
    insecure = site.enroll("pc-plain", tmp_path / "agent.toml", "--url", plain, "--insecure-http")
    assert insecure.returncode == 2 and "cannot be reached" in insecure.stderr  # the collector speaks only HTTPS
