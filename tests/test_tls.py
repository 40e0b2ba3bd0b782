"""MQTT over TLS with certificates made the way docs/en/security.md shows: agent and collector verify the
broker; an agent that does not trust the broker's CA never sends and keeps its reports spooled."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from realservices import Mosquitto, free_port, wait_until
from stack import Stack


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(folder: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=folder)  # fmt: skip


def make_server_cert(folder: Path, ca: str) -> None:
    """docs/en/security.md's recipe: a key, a request, and a certificate signed by the CA for the broker's names."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=broker", "-keyout", "server.key",
            "-out", "server.csr", cwd=folder)  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=folder)  # fmt: skip


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, Path]]:
    certs = tmp_path / "certs"
    certs.mkdir()
    make_ca(certs, "province-ca")
    make_ca(certs, "other-ca")
    make_server_cert(certs, "province-ca")
    tls_port = free_port()
    broker = Mosquitto(
        tmp_path / "broker",
        extra_config=(
            f"listener {tls_port} 127.0.0.1\n"
            f"cafile {certs / 'province-ca.crt'}\ncertfile {certs / 'server.crt'}\nkeyfile {certs / 'server.key'}\n"
            "tls_version tlsv1.2\n"
        ),
    )
    broker.start()
    broker.port = tls_port
    yield broker, certs
    broker.stop()


def spooled(agent_dir: Path) -> int:
    with sqlite3.connect(agent_dir / "spool.sqlite") as db:
        return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])


def test_agent_and_collector_talk_tls_and_an_untrusted_broker_gets_nothing(
    tls_broker: tuple[Mosquitto, Path], stack: Stack
) -> None:
    broker, certs = tls_broker
    stack.started_collector(mqtt={"port": broker.port, "tls": True, "ca_file": str(certs / "province-ca.crt")})

    agents = {}
    for host, ca in (("pc-trusts", "province-ca"), ("pc-wrong-ca", "other-ca")):
        agents[host] = stack.agent(
            host=host, mqtt={"port": broker.port, "tls": True, "ca_file": str(certs / f"{ca}.crt")}
        )
        agents[host].start()
    try:
        wait_until(lambda: stack.stored_reports("pc-trusts") >= 3, 60, "points over TLS")
        wait_until(lambda: spooled(agents["pc-wrong-ca"].workdir) >= 3, 60, "untrusting agent spools")
        assert stack.stored_reports("pc-wrong-ca") == 0
        assert agents["pc-wrong-ca"].running()
        assert "certificate verify failed" in agents["pc-wrong-ca"].log()
    finally:
        for agent in agents.values():
            agent.stop()
