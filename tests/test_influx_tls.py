"""The InfluxDB client's TLS: every client verifies with the system's CA certificates, loaded once
per process (a client is made per report and per scorecard asked; loading them each time cost
about 25 ms of a scorecard's answer)."""

from __future__ import annotations

import ssl

from collector.config import InfluxSettings
from collector.ingest.influx import InfluxClient, tls_context


def test_every_client_verifies_with_one_context_loaded_once() -> None:
    clients = [
        InfluxClient(InfluxSettings(url=url)) for url in ("https://influx.example:8086", "http://127.0.0.1:8086")
    ]
    try:
        context = tls_context()
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.cert_store_stats()["x509_ca"] > 0  # the system's CAs are there
        for client in clients:
            assert client._http._transport._pool._ssl_context is context  # httpx's pool holds the one context
    finally:
        for client in clients:
            client.close()
