"""Alerting: ``conditions`` (what fleet state hands over), the alert ``lifecycle`` (pending, firing,
resolved, silences, windows, flapping) and ``notify`` (webhook, e-mail, Telegram)."""
