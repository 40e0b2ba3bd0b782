"""The HTTP API serves what its OpenAPI document says: schemathesis, with every check, against a real
collector's own /openapi.json and an admin token, finds nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from realservices import API_TOKEN, Collector, http_get

from collector.http.contract import MAX_ROW_ID

MAX_EXAMPLES = 30  # per operation and phase: about 25 s on 2 cores for the 22 operations
SEED = 1  # the same cases every run; change it to explore


def test_schemathesis_with_all_checks_finds_no_failure(
    make_collector: Callable[..., Collector], tmp_path: Path
) -> None:
    collector = make_collector()
    collector.start()
    status, body = http_get(f"{collector.url}/openapi.json")
    assert status == 200
    operations = sum(1 for item in json.loads(body)["paths"].values() for method in item if method != "parameters")
    st = Path(sys.executable).parent / "st"  # the venv's schemathesis (dev extra)
    run = subprocess.run(
        [str(st), "run", f"{collector.url}/openapi.json", "--checks", "all",
         "-H", f"Authorization: Bearer {API_TOKEN}", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
         "--workers", "1", "--no-color"],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert re.search(rf"Selected: {operations}/{operations}\s+Tested: {operations}\b", report), report[-3000:]
    assert "Failures:" not in report and "Errors:" not in report, report[-3000:]
    assert "Traceback" not in collector.log()


def test_the_document_declares_bounds_errors_content_types_and_the_bearer_scheme(
    make_collector: Callable[..., Collector],
) -> None:
    collector = make_collector()
    collector.start()
    document = json.loads(http_get(f"{collector.url}/openapi.json")[1])
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": "An API token: viewer reads, admin changes."
    }  # fmt: skip
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.startswith("/api/v1/"):
                assert {"401", "403"} <= set(operation["responses"]), (method, path)
                assert operation["security"] == [{"HTTPBearer": []}], (method, path)
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"].get("anyOf", [parameter["schema"]])[0]
                bounded = {"pattern", "enum", "maximum"} & set(schema) or schema.get("type") == "boolean"
                assert bounded, (method, path, parameter)
                if schema["type"] == "integer":
                    assert schema["maximum"] <= MAX_ROW_ID, (method, path, parameter)
    assert "text/plain" in document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert (
        "image/jpeg" in document["paths"]["/speedtest/random{side}x{side2}.jpg"]["get"]["responses"]["200"]["content"]
    )
    assert "text/html" in document["paths"]["/status"]["get"]["responses"]["200"]["content"]


def test_an_id_beyond_sqlite_integers_is_refused_not_a_server_error(make_collector: Callable[..., Collector]) -> None:
    collector = make_collector()
    collector.start()
    for method, path in (("DELETE", f"/api/v1/silences/{2**70}"), ("POST", f"/api/v1/alerts/{2**70}/ack")):
        status, body = collector.send_json(method, path, {"by": "an", "comment": ""} if method == "POST" else None)
        assert status == 422 and body["detail"][0]["type"] == "less_than_equal", (method, body)
    status, _body = collector.send_json("DELETE", f"/api/v1/silences/{MAX_ROW_ID}")
    assert status == 404


def allow_of_refused(url: str, method: str) -> str:
    """The ``Allow`` header of a 405 answer to ``method`` (with the admin token)."""
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"Bearer {API_TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raise AssertionError(f"{method} {url} was answered {response.status}")
    except urllib.error.HTTPError as exc:
        assert exc.code == 405, exc.code
        return str(exc.headers["Allow"])


def test_a_method_a_path_lacks_is_answered_405_naming_every_method_it_has(
    make_collector: Callable[..., Collector],
) -> None:
    collector = make_collector()
    collector.start()
    assert allow_of_refused(f"{collector.url}/api/v1/silences", "PATCH") == "GET, POST"
    assert allow_of_refused(f"{collector.url}/speedtest/upload.php", "DELETE") == "GET, POST"
    assert allow_of_refused(f"{collector.url}/api/v1/silences/7", "GET") == "DELETE"
