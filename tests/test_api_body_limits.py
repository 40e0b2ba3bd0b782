"""Every route's body limit on a real collector: an oversized body is answered 413 before it is read,
whether it declares its length or comes chunked, and the collector's memory stays flat (RSS from /proc).

The attack from issue 29: a 300 MB ``POST /api/v1/enroll`` with a wrong key from an address the
enrolment throttle already refuses raised the collector's RSS from 93 to 403 MB, for good.
"""

from __future__ import annotations

import json
import re
import select
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from realservices import API_TOKEN, Collector, Influxd
from test_self_enrollment import FAILURES_PER_ADDRESS, enrolling_site

from collector.http.auth import digest
from collector.http.body_limits import JSON_MAX, route_limits, stated
from collector.http.fleet_routes import Ack

MB = 1024 * 1024
DECLARED = 300 * MB  # what the attacker declared; the client stops sending once the server answers
PIECE = 256 * 1024
PATH_VALUES = {"province": "08", "commune": "02473", "host": "pc-01", "code": "02473", "alert_id": "1"}
BODY_LIMIT_KEY = "x-body-limit-bytes"  # each operation's stated limit in /openapi.json
RSS_SLACK = 24 * MB  # a fully read body of any of these sizes would pass it many times over


@pytest.fixture(scope="module")
def collector(influxd: Influxd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    folder = tmp_path_factory.mktemp("body-limits")
    limits = {"failures_per_address": FAILURES_PER_ADDRESS, "failure_refill_s": 3600}
    tokens = {"tokens": [{"name": "tests", "role": "admin", "sha256": digest(API_TOKEN)}]}
    broker, collector, _database = enrolling_site(folder, influxd, tokens, limits)
    collector.start()
    yield collector
    collector.stop()
    broker.stop()


def rss(collector: Collector) -> int:
    """The collector process's resident set, bytes (``VmRSS`` in /proc/<pid>/status)."""
    assert collector.proc is not None
    text = Path(f"/proc/{collector.proc.pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    assert found, text
    return int(found.group(1)) * 1024


def operations(collector: Collector) -> list[tuple[str, str, int]]:
    """(method, concrete path, stated limit) of every operation in the collector's OpenAPI document."""
    document = collector.get_json("/openapi.json")
    out = []
    for template, item in document["paths"].items():
        path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PATH_VALUES.get(m.group(1), "100"), template)
        for method, operation in item.items():
            out.append((method.upper(), path, int(operation[BODY_LIMIT_KEY])))
    return out


def send_oversized(
    collector: Collector, method: str, path: str, size: int, chunked: bool, key: str = API_TOKEN, source: str = ""
) -> int:
    """Send ``method path`` with a body of ``size`` bytes (declared, or chunked without a length),
    stopping as soon as the server answers; the status it answered (0: it closed without one)."""
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{collector.http_port}", f"Authorization: Bearer {key}"]
    head += ["Content-Type: application/json", "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"]
    with socket.create_connection(
        ("127.0.0.1", collector.http_port), timeout=30, source_address=(source, 0) if source else None
    ) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sent, piece = 0, b"{" + b" " * (PIECE - 1)
        while sent < size:
            readable, writable, _ = select.select([sock], [sock], [], 30)
            if readable:
                break
            if not writable:
                return 0
            try:
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        return read_status(sock)


def read_status(sock: socket.socket) -> int:
    try:
        first = sock.recv(4096)
    except (ConnectionResetError, TimeoutError):
        return 0
    found = re.match(rb"HTTP/1\.1 (\d{3}) ", first)
    return int(found.group(1)) if found else 0


def test_a_300_mb_enrolment_from_a_throttled_address_is_refused_413_before_it_is_read(collector: Collector) -> None:
    for _ in range(FAILURES_PER_ADDRESS):  # the attacker's address is throttled (429) first
        assert send_json_enroll(collector, "cek_wrong", "127.0.0.9") == 403
    assert send_json_enroll(collector, "cek_wrong", "127.0.0.9") == 429
    before = rss(collector)
    declared = send_oversized(collector, "POST", "/api/v1/enroll", DECLARED, False, "cek_wrong", "127.0.0.9")
    chunked = send_oversized(collector, "POST", "/api/v1/enroll", DECLARED, True, "cek_wrong", "127.0.0.9")
    grown = rss(collector) - before
    assert (declared, chunked, grown < RSS_SLACK) == (413, 413, True), f"RSS grew by {grown / MB:.1f} MB"
    assert send_json_enroll(collector, "cek_wrong", "127.0.0.9") == 429  # the throttle still holds


def test_every_route_states_a_body_limit_and_refuses_a_larger_body_with_413(collector: Collector) -> None:
    ops = operations(collector)
    limits = {(method, path): limit for method, path, limit in ops}
    assert limits[("POST", "/api/v1/enroll")] == 4 * 1024
    assert limits[("POST", "/api/v1/silences")] == 64 * 1024
    assert limits[("POST", "/speedtest/upload.php")] == 8 * MB
    assert limits[("GET", "/api/v1/hosts")] == 0
    refused_before = collector.metric("commune_collector_api_refused_body_too_large_total")
    before = rss(collector)
    answered = {}
    for method, path, limit in ops:
        for chunked in (False, True):
            answered[(method, path, chunked)] = send_oversized(collector, method, path, limit + 4 * MB, chunked)
    grown = rss(collector) - before
    assert {k: v for k, v in answered.items() if v != 413} == {}
    assert grown < RSS_SLACK, f"RSS grew by {grown / MB:.1f} MB"
    refused = collector.metric("commune_collector_api_refused_body_too_large_total") - refused_before
    assert refused == len(answered)
    assert collector.get_json("/api/v1/hosts") == []  # the collector still answers


def send_json_enroll(collector: Collector, key: str, source: str) -> int:
    body = json.dumps({"province": "08", "commune": "02473", "host": "pc-x"}).encode()
    with socket.create_connection(("127.0.0.1", collector.http_port), timeout=30, source_address=(source, 0)) as sock:
        head = f"POST /api/v1/enroll HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        sock.sendall(f"{head}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        return read_status(sock)


def test_a_body_within_the_limit_is_still_taken(collector: Collector) -> None:
    status, body = collector.post_json("/api/v1/silences", {"matchers": {"commune": "02473"}, "duration_s": 60,
                                                           "author": "test", "comment": "x" * 400})  # fmt: skip
    assert status == 201, body
    answer: Any = body
    assert answer["author"] == "test"


def test_a_route_that_takes_a_body_without_stating_a_limit_stops_the_app() -> None:
    router = APIRouter()

    @router.post("/api/v1/example")
    def example(body: Ack) -> None:  # pragma: no cover - never served
        del body

    with pytest.raises(RuntimeError, match="/api/v1/example takes a body but states no limit"):
        route_limits(router.routes, {})
    stated_router = APIRouter()
    stated_router.post("/api/v1/example", openapi_extra=stated(JSON_MAX))(example)
    (limit,) = route_limits(stated_router.routes, {})
    assert (limit.max_bytes, sorted(limit.methods)) == (JSON_MAX, ["POST"])
