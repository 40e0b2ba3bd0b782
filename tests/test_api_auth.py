"""HTTP API tokens on a real collector: 401 without a token, 403 with a wrong or too weak one,
viewer reads, admin changes, tokens stored only as hashes and never logged."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from realservices import API_TOKEN, Agent, Collector, wait_until


def call(method: str, url: str, token: str | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def token_cli(collector: Collector, *args: str) -> subprocess.CompletedProcess[str]:
    return collector.cli("token", *args)


def test_api_refuses_missing_and_wrong_tokens_but_health_and_metrics_stay_open(
    make_collector: Callable[..., Collector],
) -> None:
    collector = make_collector()
    collector.start()
    hosts = f"{collector.url}/api/v1/hosts"

    status, headers = call("GET", hosts)
    assert status == 401
    assert headers.get("www-authenticate", headers.get("WWW-Authenticate")) == "Bearer"
    assert call("GET", hosts, "not-a-real-token")[0] == 403
    assert call("GET", hosts, API_TOKEN)[0] == 200
    assert call("GET", f"{collector.url}/healthz")[0] == 200
    assert call("GET", f"{collector.url}/metrics")[0] == 200
    assert collector.metric("commune_collector_api_refused_unknown_token_total") == 1


def test_viewer_token_reads_but_only_admin_changes(
    make_collector: Callable[..., Collector], make_agent: Callable[..., Agent], tmp_path: Path
) -> None:
    collector = make_collector()
    collector.start()
    agent = make_agent(commune="02473", host="pc-forget")
    agent.start()
    wait_until(lambda: any(h["host"] == "pc-forget" for h in collector.get_json("/api/v1/hosts")), 30, "agent known")
    agent.stop()

    made = token_cli(collector, "add", "--name", "grafana", "--role", "viewer")
    assert made.returncode == 0, made.stderr
    viewer = made.stdout.strip()
    assert viewer.startswith("cmt_") and len(viewer) > 40
    listed = token_cli(collector, "list")
    assert "grafana\tviewer" in listed.stdout and viewer not in listed.stdout

    host_url = f"{collector.url}/api/v1/hosts/08/02473/pc-forget"
    assert call("GET", f"{collector.url}/api/v1/hosts", viewer)[0] == 200
    assert call("DELETE", host_url, viewer)[0] == 403
    assert call("DELETE", host_url)[0] == 401
    assert call("DELETE", host_url, API_TOKEN)[0] == 200
    assert all(h["host"] != "pc-forget" for h in collector.get_json("/api/v1/hosts"))
    assert call("DELETE", host_url, API_TOKEN)[0] == 404

    assert token_cli(collector, "revoke", "--name", "grafana").returncode == 0
    assert call("GET", f"{collector.url}/api/v1/hosts", viewer)[0] == 403

    state = Path(collector.config_path).parent.parent / "state.sqlite"
    stored = b"".join(p.read_bytes() for p in state.parent.glob("state.sqlite*"))
    assert viewer.encode() not in stored and API_TOKEN.encode() not in stored
    assert viewer not in collector.log() and API_TOKEN not in collector.log()


def test_token_cli_refuses_a_duplicate_name(make_collector: Callable[..., Collector]) -> None:
    collector = make_collector()
    assert token_cli(collector, "add", "--name", "ops", "--role", "admin").returncode == 0
    again = token_cli(collector, "add", "--name", "ops", "--role", "admin")
    assert again.returncode == 1
    assert "exists already" in again.stderr
    assert token_cli(collector, "revoke", "--name", "nobody").returncode == 1
