"""HTTP(S) probe: is a service (the public-service portal, the document system) answering, and how fast."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import urllib.request
from typing import Dict, Union

Result = Dict[str, Union[float, str]]  # typing's names: this alias is evaluated at run time on 3.8


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None  # a redirect is an answer: the service is up


_opener = urllib.request.build_opener(_NoRedirect)


def fetch(url: str, timeout_s: float) -> Result:
    started = time.monotonic()
    request = urllib.request.Request(url, headers={"User-Agent": "commune-agent-probe"})
    try:
        with _opener.open(request, timeout=timeout_s) as response:
            response.read(65536)
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        return {"ok": 0.0, "error": classify(exc), "duration_ms": (time.monotonic() - started) * 1000}
    elapsed = (time.monotonic() - started) * 1000
    ok = 100 <= status < 400
    result: Result = {"ok": 1.0 if ok else 0.0, "status_code": float(status), "duration_ms": elapsed}
    if not ok:
        result["error"] = "http_status"
    return result


def classify(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, socket.gaierror):
        return "nxdomain"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timeout"
    if isinstance(reason, ConnectionRefusedError):
        return "refused"
    if isinstance(reason, ssl.SSLError):
        return "tls"
    if isinstance(reason, OSError) and reason.errno in (101, 113):
        return "unreachable"
    return "http_error"
