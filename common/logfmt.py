"""Structured one-line logs (logfmt: ``key=value``) for both programs; never carries secrets.

Secrets stay out in three ways: extra keys named like a secret are masked; URLs are shown without
their ``user:password@`` part; and the request logs of HTTP libraries (httpx and httpcore print
every request URL at INFO, urllib3 at DEBUG) are held at WARNING whatever level is asked for,
since a URL may carry a credential (a Telegram bot token is part of the API's path).
"""

from __future__ import annotations

import logging
import sys
import time
from urllib.parse import urlsplit, urlunsplit

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
SECRET_KEYS = ("password", "token", "secret")
# Loggers of libraries that log request URLs, or whole requests, below WARNING.
QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "requests", "grafana_client", "hpack", "multipart")


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        parts = [f"ts={stamp}", f"level={record.levelname.lower()}", f"logger={record.name}"]
        parts.append(f"msg={_quote(record.getMessage())}")
        for key, value in record.__dict__.items():
            if key in _STANDARD:
                continue
            shown = "***" if any(s in key.lower() for s in SECRET_KEYS) else value
            parts.append(f"{key}={_quote(shown)}")
        if record.exc_info:
            parts.append(f"exc={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def shown_url(url: str) -> str:
    """The URL without any ``user:password@`` in it, for messages and logs."""
    parts = urlsplit(url)
    if not parts.hostname:
        return url
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))
