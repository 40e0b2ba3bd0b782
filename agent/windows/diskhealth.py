"""Disk health on Windows: the storage management API's physical disks and reliability counters
(``MSFT_PhysicalDisk``, ``MSFT_StorageReliabilityCounter`` in ``root\\Microsoft\\Windows\\Storage``)
and the disk driver's S.M.A.R.T. failure prediction (``MSStorageDriver_FailurePredictStatus`` in
``root\\wmi``), through pywin32's COM client (no child process), as the ``disk_health`` items the
Linux agent sends from smartctl.

Unverified: this has not run on a Windows PC, and CI has none. ``disk_health_items`` is tested on
outputs recorded on real Windows PCs (tests/recorded/windows/diskhealth/, each citing its source;
the reliability counter's is Microsoft's documentation example). Windows gives no reallocated or
pending sector counts: a disk's verdict is its ``HealthStatus`` and its driver's prediction.
Values come as numbers from WMI and as words from PowerShell's ``Format-List``; both are read.

A prediction names a disk by its driver instance (``SCSI\\Disk&Ven_ST350041&Prod_8AS\\...``):
vendor and product are the model split after eight characters, so it is matched to the physical
disk whose model, spaces left out, starts with the two joined.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

log = logging.getLogger("commune_agent.diskhealth")

STORAGE = "winmgmts:\\\\.\\root\\Microsoft\\Windows\\Storage"
DRIVER = "winmgmts:\\\\.\\root\\wmi"
DISK_PROPERTIES = ("DeviceId", "FriendlyName", "SerialNumber", "MediaType", "BusType", "HealthStatus")
COUNTER_PROPERTIES = ("DeviceId", "Temperature", "Wear", "PowerOnHours")
PREDICT_PROPERTIES = ("InstanceName", "PredictFailure")
MEDIA_TYPES = {"3": "hdd", "hdd": "hdd", "4": "ssd", "ssd": "ssd"}  # MSFT_PhysicalDisk.MediaType
NVME_BUS = ("17", "nvme")  # MSFT_PhysicalDisk.BusType
HEALTHY, UNHEALTHY = ("0", "healthy"), ("2", "unhealthy")  # HealthStatus; 1 Warning, 5 Unknown
INSTANCE_RE = re.compile(r"Ven_([^&\\]*)&Prod_([^&\\]*)", re.IGNORECASE)
MAX_TEXT = 128


def disk_health_items(
    disks: Iterable[Mapping[str, Any]],
    counters: Iterable[Mapping[str, Any]],
    predictions: Iterable[Mapping[str, Any]],
    counters_reason: str = "",
) -> list[dict[str, Any]]:
    """One item per physical disk, labelled ``disk<DeviceId>``. A disk with neither a reliability
    counter nor a prediction has ``smart_available`` 0 and ``counters_reason`` (why the counters
    could not be read: ``permission``), else ``no_smart``."""
    by_id = {_text(c.get("DeviceId")): c for c in counters}
    predicted = [(_instance_model(p.get("InstanceName")), _true(p.get("PredictFailure"))) for p in predictions]
    items = []
    for disk in sorted(disks, key=lambda d: _text(d.get("DeviceId")).zfill(4)):
        device = _text(disk.get("DeviceId"))
        model = _text(disk.get("FriendlyName"))
        squeezed = model.replace(" ", "").upper()
        mine = [failing for prefix, failing in predicted if prefix and squeezed.startswith(prefix)]
        counter = by_id.get(device)
        item: dict[str, Any] = {"disk": f"disk{device}" if device.isdigit() else "disk", "type": _type(disk)}
        if model:
            item["model"] = model
        serial = _text(disk.get("SerialNumber")).rstrip(".")
        if serial:
            item["serial"] = serial
        if counter is None and not mine:
            item.update(smart_available=0.0, reason=counters_reason or "no_smart")
            items.append(item)
            continue
        item["smart_available"] = 1.0
        health = _text(disk.get("HealthStatus")).lower()
        if health in UNHEALTHY or any(mine):
            item["health_passed"] = 0.0
        elif health in HEALTHY:
            item["health_passed"] = 1.0
        if counter is not None:
            _put(item, "power_on_hours", counter.get("PowerOnHours"))
            _put(item, "percentage_used", counter.get("Wear"))
            _put(item, "temp_c", counter.get("Temperature"), positive=True)
        items.append(item)
    return items


def _type(disk: Mapping[str, Any]) -> str:
    if _text(disk.get("BusType")).lower() in NVME_BUS:
        return "nvme"
    return MEDIA_TYPES.get(_text(disk.get("MediaType")).lower(), "unknown")


def _instance_model(name: Any) -> str:
    """``SCSI\\Disk&Ven_ST350041&Prod_8AS\\4&...`` -> ``ST3500418AS``; "" when it is not such a name."""
    match = INSTANCE_RE.search(_text(name))
    return (match.group(1) + match.group(2)).replace("_", "").upper() if match else ""


def _true(value: Any) -> bool:
    return value is True or _text(value).lower() == "true"


def _text(value: Any) -> str:
    text = "" if value is None else str(value).strip()
    return "".join(ch for ch in text if ch.isprintable())[:MAX_TEXT]


def _put(item: dict[str, Any], name: str, value: Any, positive: bool = False) -> None:
    text = _text(value)
    if text.isdigit() and (not positive or int(text) > 0):
        item[name] = float(text)


class WmiDiskHealth:
    """The disk health round on Windows (the agent runs it every ``[disk_health] interval_s``). A
    failed query is logged and leaves its part out, never an exception: the reliability counters
    need an administrator (the agent's service runs as LocalSystem)."""

    def __call__(self) -> dict[str, Any]:
        disks = _query(STORAGE, "MSFT_PhysicalDisk", DISK_PROPERTIES)
        if disks is None:
            return {}
        counters = _query(STORAGE, "MSFT_StorageReliabilityCounter", COUNTER_PROPERTIES)
        predictions = _query(DRIVER, "MSStorageDriver_FailurePredictStatus", PREDICT_PROPERTIES) or []
        items = disk_health_items(disks, counters or [], predictions, "" if counters is not None else "permission")
        return {"disk_health": items} if items else {}


def _query(moniker: str, wmi_class: str, properties: tuple[str, ...]) -> list[dict[str, Any]] | None:
    try:
        import win32com.client  # pywin32, Windows only

        service = win32com.client.GetObject(moniker)
        rows = service.ExecQuery(f"SELECT {', '.join(properties)} FROM {wmi_class}")
        return [{name: getattr(row, name, None) for name in properties} for row in rows]
    except Exception as exc:  # COM errors have no common base class worth naming here
        log.warning("wmi query failed", extra={"class": wmi_class, "error": str(exc)[:200]})
        return None
