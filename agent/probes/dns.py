"""DNS probe: how long the system resolver takes to resolve a name."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Dict, Union

Result = Dict[str, Union[float, str]]  # typing's names: this alias is evaluated at run time on 3.8

# getaddrinfo has no timeout of its own; a stuck lookup occupies one of these threads until it returns.
_resolver = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dns-probe")


def resolve(name: str, timeout_s: float) -> Result:
    started = time.monotonic()
    future = _resolver.submit(socket.getaddrinfo, name, None, type=socket.SOCK_STREAM)
    try:
        future.result(timeout=timeout_s)
    except FutureTimeout:
        return {"ok": 0.0, "error": "timeout", "duration_ms": timeout_s * 1000}
    except socket.gaierror as exc:
        error = "nxdomain" if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)) else "dns_error"
        return {"ok": 0.0, "error": error, "duration_ms": (time.monotonic() - started) * 1000}
    except OSError:
        return {"ok": 0.0, "error": "dns_error", "duration_ms": (time.monotonic() - started) * 1000}
    return {"ok": 1.0, "duration_ms": (time.monotonic() - started) * 1000}
