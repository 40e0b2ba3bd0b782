"""``commune-agent enroll``: the PC enrols itself and writes its own config.

It posts its place to the collector's ``POST /api/v1/enroll`` with the area's enrolment key as the
bearer token, and writes what comes back (its own MQTT user and password, the broker's address)
into an agent config, mode 0600, with the CA beside it. Only the standard library's urllib is
used: the agent stays free of server packages and runs on Python 3.8.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from common.private_file import discard_private, finish_private, open_private

TIMEOUT_S = 30.0


class EnrollFailed(RuntimeError):
    """The collector refused or could not be reached; the message says why, never the key."""


def url_refusal(url: str, insecure_http: bool, ca_file: str) -> str:
    """Why ``url`` may not be used to enrol ("" when it may): the key and the password must not
    cross the line in cleartext unless the admin says so."""
    if url.startswith("http://"):
        if insecure_http:
            return ""
        return (
            f"--url {url} is plain HTTP: the key and the MQTT password would cross in cleartext; "
            "use https:// (or --insecure-http on a trusted network)"
        )
    if not url.startswith("https://"):
        return f"--url {url} must start with https://"
    if ca_file and not os.path.isfile(ca_file):
        return f"--ca-file {ca_file} does not exist"
    return ""


def default_host() -> str:
    return socket.gethostname().split(".")[0]


def request_enrollment(url: str, key: str, province: str, commune: str, host: str, ca_file: str = "") -> dict[str, Any]:
    """POST the place with the key; the collector's answer, or EnrollFailed with its reason. Over
    HTTPS the collector's certificate is verified against ``ca_file`` (else the system's CAs)."""
    body = json.dumps({"province": province, "commune": commune, "host": host}).encode()
    request = urllib.request.Request(
        url.rstrip("/") + "/api/v1/enroll",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + key},
        method="POST",
    )
    try:
        context = ssl.create_default_context(cafile=ca_file or None) if url.startswith("https://") else None
        with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        raise EnrollFailed(f"the collector refused ({exc.code}): {problem(exc.read())}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise EnrollFailed(f"the collector at {url} cannot be reached: {exc}") from None


def problem(body: bytes) -> str:
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace")
    return str(detail)[:300]


def quoted(value: object) -> str:
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string is a JSON string


def config_text(answer: dict[str, Any], ca_file: str) -> str:
    return "\n".join(
        [
            f"# commune-agent config for {answer['host']}, enrolled with `commune-agent enroll`.",
            "# It holds this PC's MQTT password: keep it readable by the agent's user only.",
            "[identity]",
            f"province = {quoted(answer['province'])}",
            f"commune = {quoted(answer['commune'])}",
            f"host = {quoted(answer['host'])}",
            "",
            "[mqtt]",
            f"host = {quoted(answer['broker_host'])}",
            f"port = {int(answer['broker_port'])}",
            f"username = {quoted(answer['username'])}",
            f"password = {quoted(answer['password'])}",
            f"tls = {'true' if answer['tls'] else 'false'}",
            f"ca_file = {quoted(ca_file)}",
            "",
        ]
    )


def enroll(url: str, key: str, province: str, commune: str, host: str, out: Path, ca_file: str = "") -> str:
    """Enrol and write the config (and the CA, if one came, as ``ca.pem`` beside it); the MQTT user.

    The config's file is made before the collector is asked: a host name taken for a config that
    cannot be written would be lost, since only an admin can issue it again."""
    if not out.parent.is_dir():
        raise EnrollFailed(f"folder {out.parent} for --out does not exist; create it first")
    if out.is_dir():
        raise EnrollFailed(f"--out {out} is a folder; give the config file's path")
    try:
        fd = open_private(out)
    except OSError as exc:
        raise EnrollFailed(f"--out {out} cannot be written ({exc.strerror}); nothing was enrolled") from None
    try:
        answer = request_enrollment(url, key, province, commune, host, ca_file)
    except BaseException:
        discard_private(fd, out)
        raise
    ca_file = ""
    if answer.get("ca_pem"):
        ca_path = out.with_name("ca.pem")
        ca_path.write_text(str(answer["ca_pem"]), encoding="utf-8")
        ca_file = str(ca_path.resolve())
    finish_private(fd, out, config_text(answer, ca_file))
    return str(answer["username"])
