"""The one InfluxDB client: ``/write`` (line protocol, precision s), ``/query`` (InfluxQL), ``/ping``.

These endpoints are served by InfluxDB 1.x, by 2.x through a DBRP mapping with a token, and
by 3.x Core, so the collector speaks to all three the same way. Credentials travel only in the
``Authorization`` header (``Token …`` for 2.x/3.x, HTTP Basic for a 1.x user), never in the URL:
URLs end up in access logs, InfluxDB's own included.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx

from collector.config import InfluxSettings
from common.logfmt import shown_url


class InfluxError(RuntimeError):
    """InfluxDB refused or could not be reached; ``retryable`` says whether trying later may help."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The system's CA certificates, loaded once per process: a client is made per report and per
    scorecard asked, and loading them took about 25 ms each time (an https InfluxDB is verified
    the same)."""
    return ssl.create_default_context()


class InfluxClient:
    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        self.database = settings.database
        headers = {}
        auth: httpx.BasicAuth | None = None
        token = settings.token.get_secret_value()
        if token:
            headers["Authorization"] = f"Token {token}"
        elif settings.username:
            auth = httpx.BasicAuth(settings.username, settings.password.get_secret_value())
        self._http = httpx.Client(
            base_url=settings.url.rstrip("/"),
            headers=headers,
            auth=auth,
            timeout=settings.timeout_s,
            verify=tls_context(),
        )

    def close(self) -> None:
        self._http.close()

    def ping(self) -> bool:
        try:
            return self._http.get("/ping", timeout=2.0).status_code == 204
        except httpx.HTTPError:
            return False

    def write_lines(self, lines: list[str], retention_policy: str | None = None) -> None:
        """Write a batch; raises InfluxError. A 400 "partial write" stored the valid lines."""
        if not lines:
            return
        params = {"db": self.database, "precision": "s"}
        if retention_policy:
            params["rp"] = retention_policy
        body = ("\n".join(lines) + "\n").encode()
        try:
            response = self._http.post("/write", params=params, content=body)
        except httpx.HTTPError as exc:
            raise InfluxError(
                f"write to {shown_url(self.settings.url)} failed: {type(exc).__name__}: {exc}", True
            ) from None
        if response.status_code == 204:
            return
        text = response.text[:300]
        # Only 400 means the data itself is bad; a missing database or refused login (404, 401/403)
        # is fixed by a person, and the batch should wait in the buffer until then.
        raise InfluxError(f"write returned {response.status_code}: {text}", response.status_code != 400)

    def query(self, influxql: str, database: str | None = None, method: str = "GET") -> list[dict[str, Any]]:
        """Run InfluxQL; returns the ``results`` list. Raises InfluxError on any error in the answer."""
        params = {"q": influxql, "db": database or self.database, "epoch": "s"}
        try:
            if method == "POST":
                response = self._http.post("/query", params=params)
            else:
                response = self._http.get("/query", params=params)
        except httpx.HTTPError as exc:
            raise InfluxError(f"query to {shown_url(self.settings.url)} failed: {exc}", True) from None
        if response.status_code != 200:
            raise InfluxError(f"query returned {response.status_code}: {response.text[:300]}", False)
        results: list[dict[str, Any]] = response.json().get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxError(f"query error: {result['error']}", False)
        return results

    def query_rows(self, influxql: str) -> list[dict[str, Any]]:
        """Flatten a single-statement answer into dicts (with the series' tags merged in)."""
        rows: list[dict[str, Any]] = []
        for result in self.query(influxql):
            for series in result.get("series", []):
                tags = series.get("tags", {})
                for values in series.get("values", []):
                    rows.append({**tags, **dict(zip(series["columns"], values, strict=True))})
        return rows
