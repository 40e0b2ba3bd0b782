"""Notifications: alert events grouped per area and sent by webhook (JSON), e-mail (SMTP) and
Telegram, in Vietnamese (default) or English.

Events wait ``group_wait_s`` so that one line cut in an area becomes one message listing every
commune and host, not fifty. Sending happens on its own thread: a slow or failing receiver never
holds up the collector; each failure is counted in /metrics and retried a few times. Waiting
events are kept in an outbox table of the state file, so a restart or crash does not lose them
(a message cut off mid-send is sent again: at least once).

Receivers' addresses may hold secrets (a Telegram bot token is part of the API path, webhook URLs
often carry one), so a log line names a channel by its kind and host only, and every configured
secret is cut out of an error's text before it is logged.
"""

from __future__ import annotations

import json
import logging
import queue
import smtplib
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from email.message import EmailMessage
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpx

from collector.alerting.lifecycle import Alert, Event, alert_from_row, alert_json, alert_row
from collector.config import NotifySettings
from collector.registry.registry import Registry
from collector.selfmetrics import SelfMetrics
from collector.store import Store
from collector.vocabulary import NOTIFY

log = logging.getLogger("commune_collector.notify")

RETRIES = 3
Waiting = tuple[int, str, Alert]  # outbox id, "firing" | "resolved", the alert as it was then
# A resolve waiting in the outbox for its outage's cause (collector/alerting/outage_notice.py); a
# restart ends the wait: a held resolve left by the last run is sent as it is.
HELD = "held"


class Notifier:
    def __init__(self, settings: NotifySettings, store: Store, registry: Registry, metrics: SelfMetrics) -> None:
        self.settings = settings
        self._store = store  # the outbox
        self._registry = registry  # area names
        self._metrics = metrics
        self._queue: queue.Queue[Waiting] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._http = httpx.Client(timeout=10.0)

    def start(self) -> None:
        rows = self._store.query("SELECT id, kind, alert FROM outbox ORDER BY id")
        for outbox_id, kind, body in rows:  # left by the last run
            sent_as = "resolved" if kind == HELD else str(kind)
            self._queue.put((int(outbox_id), sent_as, alert_from_row(json.loads(body)["id"], body)))
        if rows:
            log.info("notifications from the last run", extra={"count": len(rows)})
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._http.close()

    def submit(self, events: list[Event]) -> None:
        for kind, alert in events:
            cursor = self._store.execute("INSERT INTO outbox (kind, alert) VALUES (?, ?)", (kind, alert_row(alert)))
            self._queue.put((int(cursor.lastrowid or 0), kind, replace(alert)))  # as it is now

    def hold(self, alert: Alert) -> int:
        """Keep an event in the outbox without sending it yet (it survives a crash); ``release`` sends it."""
        cursor = self._store.execute("INSERT INTO outbox (kind, alert) VALUES (?, ?)", (HELD, alert_row(alert)))
        return int(cursor.lastrowid or 0)

    def release(self, outbox_id: int, kind: str, alert: Alert) -> None:
        """Send a held event, as ``kind`` and with the alert as given now."""
        self._store.execute("UPDATE outbox SET kind = ?, alert = ? WHERE id = ?", (kind, alert_row(alert), outbox_id))
        self._queue.put((outbox_id, kind, replace(alert)))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + self.settings.group_wait_s
            while time.monotonic() < deadline and not self._stop.is_set():
                try:
                    batch.append(self._queue.get(timeout=0.2))
                except queue.Empty:
                    continue
            by_area: dict[str, list[Waiting]] = {}
            for waiting in batch:
                by_area.setdefault(waiting[2].area, []).append(waiting)
            for area, waitings in sorted(by_area.items()):
                if self._send(area, [(kind, alert) for _id, kind, alert in waitings]):
                    self._store.executemany("DELETE FROM outbox WHERE id = ?", [(w[0],) for w in waitings])

    def _send(self, area: str, events: list[Event]) -> bool:
        """Every channel tried (sent, or failed after its retries); False if stopped on the way."""
        lang = self.settings.language
        area_name = self._registry.areas().get(area, area)
        firing = sum(1 for kind, _a in events if kind == "firing")
        resolved = sum(1 for kind, _a in events if kind == "resolved")  # "cause" follow-ups count as neither
        subject = (
            NOTIFY["subject"]
            .in_(lang)
            .format(area=f"{NOTIFY['area'].in_(lang)} {area_name}", firing=firing, resolved=resolved)
        )
        lines = [f"{NOTIFY[kind].in_(lang)}: {summary(alert, lang)}" for kind, alert in events]
        body = subject + "\n\n" + "\n".join(lines) + "\n"
        payload = {
            "area": area,
            "area_name": area_name,
            "language": self.settings.language,
            "subject": subject,
            "text": body,
            "events": [{"event": kind, **alert_json(alert)} for kind, alert in events],
        }
        channels: list[tuple[str, Callable[[], None]]] = [
            (f"webhook:{urlsplit(url).hostname or '?'}", partial(self._webhook, url, payload))
            for url in self.settings.webhook_urls
        ]
        if self.settings.smtp_host and self.settings.email_to:
            channels.append(("smtp", partial(self._email, subject, body)))
        for chat in self.settings.telegram_chat_ids:
            channels.append((f"telegram:{chat}", partial(self._telegram, chat, body)))
        for name, send in channels:
            for attempt in range(RETRIES):
                try:
                    send()
                    self._metrics.notifications_sent.inc()
                    break
                except (httpx.HTTPError, OSError, smtplib.SMTPException, RuntimeError) as exc:
                    self._metrics.notification_failures.inc()
                    log.warning("notification failed", extra={"channel": name[:80], "error": self._redacted(str(exc))})
                    if self._stop.wait(2**attempt):
                        return False
        return True

    def _redacted(self, text: str) -> str:
        """An error's text without any configured secret or receiver URL in it, cut to 200 characters."""
        s = self.settings
        for secret in (s.telegram_bot_token.get_secret_value(), s.smtp_password.get_secret_value(), *s.webhook_urls):
            if secret:
                text = text.replace(secret, "***")
        return text[:200]

    def _webhook(self, url: str, payload: dict[str, Any]) -> None:
        response = self._http.post(url, content=json.dumps(payload, ensure_ascii=False).encode(),
                                   headers={"Content-Type": "application/json; charset=utf-8"})  # fmt: skip
        if response.status_code >= 300:
            raise RuntimeError(f"webhook answered {response.status_code}")

    def _email(self, subject: str, body: str) -> None:
        s = self.settings
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = subject, s.email_from, ", ".join(s.email_to)
        message.set_content(body)
        send_email(s, message, timeout_s=15)

    def _telegram(self, chat_id: str, body: str) -> None:
        token = self.settings.telegram_bot_token.get_secret_value()
        url = f"{self.settings.telegram_api_url.rstrip('/')}/bot{token}/sendMessage"
        response = self._http.post(url, json={"chat_id": chat_id, "text": body[:4000]})
        if response.status_code != 200 or not response.json().get("ok"):
            raise RuntimeError(f"telegram answered {response.status_code}")


def send_email(settings: NotifySettings, message: EmailMessage, timeout_s: float) -> None:
    """Sends one message through the configured SMTP server (STARTTLS and login when configured); raises
    what smtplib raises. The alert notifications and the monthly report's mail both go this way."""
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout_s) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(message)


def summary(alert: Alert, language: str) -> str:
    return alert.summary_vi if language == "vi" else alert.summary_en
