"""The monthly e-mail: last month's PDF and XLSX to ``[report] email_to`` on the 1st at
``email_at`` local time, through the ``[notify]`` SMTP settings, once.

"Once" holds across restarts: a month is recorded in the state file's ``report_mail`` table when
its e-mail has gone (or when the month has no data to report), and a collector that starts later
sends a month it missed. A failure (InfluxDB or the mail server unreachable) is logged and tried
again at the next check.
"""

from __future__ import annotations

import logging
import smtplib
import threading
import time
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage

from collector import vocabulary as vocab
from collector.alerting.notify import send_email
from collector.config import CollectorConfig
from collector.ingest.influx import InfluxError
from collector.localtime import Month, zone_named
from collector.registry.registry import Registry
from collector.reports.build import ReportError
from collector.reports.make import FORMATS, make
from collector.store import Store

log = logging.getLogger("commune_collector.report_mail")
CHECK_INTERVAL_S = 300.0

Maker = Callable[[str], dict[str, bytes]]


def due_month(now: float, config: CollectorConfig) -> Month:
    """The month whose e-mail is due at ``now``: last month once the 1st's sending time has passed."""
    zone = zone_named(config.report.timezone)
    local = datetime.fromtimestamp(now, zone)
    hour, minute = (int(x) for x in config.report.email_at.split(":"))
    this = Month.of(local)
    send_at = datetime(this.year, this.month, 1, hour, minute, tzinfo=zone)
    return this.previous() if local >= send_at else this.previous().previous()


class MonthlyMailer:
    def __init__(self, config: CollectorConfig, store: Store, registry: Registry) -> None:
        self.config = config
        self.store = store
        self.registry = registry
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="report-mail", daemon=True)

    def enabled(self) -> bool:
        return bool(self.config.report.email_to)

    def start(self) -> None:
        if not self.enabled():
            return
        if not self.config.notify.smtp_host:
            log.warning("report email_to is set but [notify] smtp_host is empty; no monthly e-mail is sent")
            return
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _run(self) -> None:
        while True:
            try:
                self.send_due(time.time())
            except Exception:
                log.exception("monthly report e-mail failed")
            if self._stop.wait(CHECK_INTERVAL_S):
                return

    def sent(self, month: Month) -> str | None:
        rows = self.store.query("SELECT outcome FROM report_mail WHERE month = ?", (str(month),))
        return str(rows[0][0]) if rows else None

    def send_due(self, now: float) -> str:
        """Send the due month's e-mail unless it went already; returns what happened."""
        month = due_month(now, self.config)
        done = self.sent(month)
        if done is not None:
            log.info("monthly report e-mail already done", extra={"month": str(month), "outcome": done})
            return "already"
        try:
            files = make(self.config, self.store, self.registry, str(month), ["pdf", "xlsx"], now=now)
        except ReportError as exc:
            if not exc.missing:
                raise
            log.warning("no monthly report e-mail: the month has no data", extra={"month": str(month)})
            self._record(month, now, "no_data")
            return "no_data"
        except InfluxError as exc:
            log.warning("monthly report e-mail waits: InfluxDB did not answer", extra={"error": str(exc)})
            return "retry"
        try:
            self._email(month, files)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("monthly report e-mail waits: the mail server refused", extra={"error": str(exc)})
            return "retry"
        self._record(month, now, "sent")
        log.info("monthly report e-mail sent", extra={"month": str(month), "to": len(self.config.report.email_to)})
        return "sent"

    def _record(self, month: Month, now: float, outcome: str) -> None:
        self.store.execute(
            "INSERT INTO report_mail (month, sent_at, outcome) VALUES (?, ?, ?) ON CONFLICT(month) DO NOTHING",
            (str(month), now, outcome),
        )

    def _email(self, month: Month, files: dict[str, bytes]) -> None:
        n, r = self.config.notify, self.config.report
        message = EmailMessage()
        message["Subject"] = vocab.REPORT["mail_subject"].in_(r.language).format(month=month)
        message["From"] = n.email_from
        message["To"] = ", ".join(r.email_to)
        message.set_content(vocab.REPORT["mail_body"].in_(r.language).format(month=month))
        for fmt, data in files.items():
            media = FORMATS[fmt][0].split(";")[0]
            maintype, subtype = media.split("/", 1)
            message.add_attachment(data, maintype=maintype, subtype=subtype,
                                   filename=f"bao-cao-{month}.{FORMATS[fmt][1]}")  # fmt: skip
        send_email(n, message, timeout_s=30)  # attachments of a few MB take longer than an alert
