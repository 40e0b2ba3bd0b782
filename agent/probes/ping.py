"""Ping probe: the system ``ping`` (iputils, no root needed), parsed into RTT, jitter and loss."""

from __future__ import annotations

import re
import subprocess
import time
from typing import Dict, Union

Result = Dict[str, Union[float, str]]  # typing's names: this alias is evaluated at run time on 3.8

SUMMARY_RE = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
RTT_RE = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")


def ping(address: str, count: int, timeout_s: float) -> Result:
    """``count`` echo requests 0.2 s apart; ``ok`` when at least one answered."""
    started = time.monotonic()
    argv = ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", str(max(1, int(timeout_s))), address]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=count * 0.2 + timeout_s + 5, check=False)
    except FileNotFoundError:
        return {"ok": 0.0, "error": "no_ping_binary"}
    except subprocess.TimeoutExpired:
        return {"ok": 0.0, "error": "timeout", "sent": float(count), "received": 0.0, "loss_percent": 100.0}
    result: Result = {"duration_ms": (time.monotonic() - started) * 1000}
    summary = SUMMARY_RE.search(done.stdout)
    if summary is None:
        return {**result, "ok": 0.0, "error": classify(done.stderr)}
    sent, received = float(summary.group(1)), float(summary.group(2))
    result.update(sent=sent, received=received, loss_percent=100.0 * (sent - received) / sent if sent else 100.0)
    rtt = RTT_RE.search(done.stdout)
    if rtt is not None:
        low, avg, high, mdev = (float(rtt.group(i)) for i in range(1, 5))
        result.update(rtt_min_ms=low, rtt_avg_ms=avg, rtt_max_ms=high, jitter_ms=mdev)
    if received == 0:
        return {**result, "ok": 0.0, "error": "timeout"}
    return {**result, "ok": 1.0}


def classify(stderr: str) -> str:
    text = stderr.lower()
    if "name or service not known" in text or "temporary failure in name resolution" in text:
        return "nxdomain"
    if "unreachable" in text:
        return "unreachable"
    if "operation not permitted" in text or "permission denied" in text:
        return "not_permitted"
    return "ping_failed"
