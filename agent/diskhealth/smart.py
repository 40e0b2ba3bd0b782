"""What one ``smartctl --json -a`` output says about a disk, as the ``disk_health`` fields.

Pure: a parsed JSON document in, the fields out, so the recorded outputs of real disks
(tests/recorded/smartctl/) pin it exactly. smartctl prints JSON even when it fails; its exit
status is a bit mask (smartctl(8), "RETURN VALUES"): bits 0 and 1 mean it could not open or
identify the disk, bit 2 that a command failed, bits 3 to 7 report the disk's own troubles and
still come with the data. Which of these count as "S.M.A.R.T. unavailable", and why, is
``unavailable_reason``.
"""

from __future__ import annotations

from typing import Any, Dict, Union

Fields = Dict[str, Union[float, str]]

# ATA attribute ids (the smartmontools drive database names them the same way)
REALLOCATED_SECTORS = 5
PENDING_SECTORS = 197
OFFLINE_UNCORRECTABLE = 198
ATA_COUNTS = {
    REALLOCATED_SECTORS: "reallocated_sectors",
    PENDING_SECTORS: "pending_sectors",
    OFFLINE_UNCORRECTABLE: "offline_uncorrectable",
}
CANNOT_OPEN = 0b11  # exit status bits 0 (command line) and 1 (open or identify failed)
# Model names of the disks hypervisors emulate: no S.M.A.R.T. behind them.
VIRTUAL_MODELS = ("QEMU", "VBOX", "VMWARE", "VIRTUAL DISK", "VIRTUAL HD", "XEN", "RED HAT VIRTIO")
VIRTUAL_NAMES = ("vd", "xvd")  # Linux names of virtio and Xen disks


def disk_fields(doc: dict[str, Any]) -> Fields:
    """The ``disk_health`` fields (all but its ``disk`` label and ``system``) of a disk whose
    S.M.A.R.T. data smartctl read; fields it did not report are left out."""
    out: Fields = {"smart_available": 1.0}
    model = _text(doc.get("model_name")) or _text(doc.get("scsi_model_name")) or _text(doc.get("product"))
    if model:
        out["model"] = model
    serial = _text(doc.get("serial_number"))
    if serial:
        out["serial"] = serial
    out["type"] = disk_type(doc)
    passed = _dig(doc, "smart_status", "passed")
    if isinstance(passed, bool):
        out["health_passed"] = 1.0 if passed else 0.0
    _put(out, "power_on_hours", _dig(doc, "power_on_time", "hours"))
    for attribute in _dig(doc, "ata_smart_attributes", "table") or ():
        name = ATA_COUNTS.get(attribute.get("id", 0)) if isinstance(attribute, dict) else None
        if name is not None:
            _put(out, name, raw_count(attribute))
    nvme = doc.get("nvme_smart_health_information_log")
    if isinstance(nvme, dict):
        _put(out, "media_errors", nvme.get("media_errors"))
        _put(out, "percentage_used", nvme.get("percentage_used"))
    _put(out, "temp_c", _dig(doc, "temperature", "current"))
    return out


def disk_type(doc: dict[str, Any]) -> str:
    """nvme by protocol, else ssd for a rotation rate of 0 and hdd for any other, else unknown."""
    device = doc.get("device")
    device = device if isinstance(device, dict) else {}
    if device.get("type") == "nvme" or device.get("protocol") == "NVMe" or "nvme_smart_health_information_log" in doc:
        return "nvme"
    rate = doc.get("rotation_rate")
    if isinstance(rate, int) and not isinstance(rate, bool):
        return "ssd" if rate == 0 else "hdd"
    return "unknown"


def raw_count(attribute: dict[str, Any]) -> float | None:
    """An ATA attribute's raw count. smartctl prints it as ``raw.string`` in the drive database's
    format; a plain number there is the count (``raw.value`` packs several figures into 48 bits
    on some drives), else ``raw.value``."""
    raw = attribute.get("raw")
    if not isinstance(raw, dict):
        return None
    first = str(raw.get("string", "")).split(" ", 1)[0]
    if first.isdigit():
        return float(first)
    value = raw.get("value")
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else None


def unavailable_reason(doc: dict[str, Any] | None, device: str) -> str | None:
    """Why smartctl gave no S.M.A.R.T. data for ``device`` (its name, ``sda``), or None when it did.

    ``doc`` is None when smartctl printed nothing that parses. A disk it could open and identify
    counts as available when it reports a health verdict or attributes, whatever the disk's own
    trouble bits say (a failing disk is the point)."""
    if doc is None:
        return "smartctl_failed"
    status = _dig(doc, "smartctl", "exit_status")
    messages = " ".join(
        str(m.get("string", "")) for m in _dig(doc, "smartctl", "messages") or () if isinstance(m, dict)
    ).lower()
    model = (_text(doc.get("model_name")) or _text(doc.get("scsi_vendor")) or "").upper()
    virtual = device.startswith(VIRTUAL_NAMES) or any(word in model for word in VIRTUAL_MODELS)
    has_data = "smart_status" in doc or "ata_smart_attributes" in doc or "nvme_smart_health_information_log" in doc
    if (isinstance(status, int) and status & CANNOT_OPEN) or not has_data:
        if virtual:  # first: whoever asks, there is no S.M.A.R.T. behind a virtual disk
            return "virtual_disk"
        if "permission denied" in messages or "operation not permitted" in messages:
            return "permission"
        if "unable to detect device type" in messages or "lacks smart" in messages:
            return "no_smart"
        if _dig(doc, "smart_support", "available") is False:
            return "no_smart"
        return "smartctl_failed"
    return None


def _text(value: Any) -> str:
    return value.strip()[:256] if isinstance(value, str) else ""


def _dig(doc: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _put(out: Fields, name: str, value: Any) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        out[name] = float(value)
