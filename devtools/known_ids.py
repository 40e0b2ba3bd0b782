"""Generates the agent's known-ids data (``agent/peripherals/known_ids.csv``) from the data others maintain.

Run by ``make known-ids``, which first fetches Debian's packages into ``build/known-ids/``
(``apt-get download libsane1 libccid usb.ids``, each unpacked with ``dpkg -x`` under ``root/``).
The output is committed, so the agent has no build-time dependency; ``tests/test_known_ids.py``
fails when the committed file is not what a fresh generation gives.

- **Scanners**: every USB id in SANE's hardware database (``lib/udev/hwdb.d/20-sane.hwdb`` in
  ``libsane1``), each under a comment naming its models.
- **Tokens and readers**: every id in libccid's ``etc/libccid_Info.plist`` (``ifdVendorID``,
  ``ifdProductID``, ``ifdFriendlyName``): CCID smart-card readers and tokens.
- **Families the two lack**, read from ``usb.ids`` by the product names under one vendor
  (``FAMILIES``, each with why it is there): tokens that are not CCID-class (the eToken PRO
  ``0529:0600``), and document scanners driven by their maker's own driver rather than SANE.
- **Model text** is usb.ids's vendor and product name where usb.ids has the id (what ``lsusb``
  shows), else the source's own name.

Each row's ``source`` names the package and version that decided its kind. A source earlier in
the list above wins when an id is in several.
"""

from __future__ import annotations

import csv
import io
import plistlib
import re
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SANE_HWDB = "lib/udev/hwdb.d/20-sane.hwdb"
LIBCCID_PLIST = "etc/libccid_Info.plist"
USB_IDS = "usr/share/misc/usb.ids"
PACKAGES = ("libsane1", "libccid", "usb.ids")
COLUMNS = ("vendor_id", "product_id", "kind", "model", "source")
HWDB_ID_RE = re.compile(r"^usb:v([0-9A-Fa-f]{4})p([0-9A-Fa-f]{4})\*$")
MAX_MODEL = 128
VENDOR_SUFFIX_RE = re.compile(r"(,.*|\s+(Inc|Corp|Co|Ltd|Corporation)\.?)$")


@dataclass(frozen=True)
class Family:
    """usb.ids products under ``vendor`` whose name matches ``pattern`` are ``kind``, because ``why``."""

    vendor: str
    pattern: str
    kind: str
    why: str


FAMILIES = (
    Family("0529", r"^eToken ", "token",
           "Aladdin/SafeNet eToken R1, R2 and PRO: SafeNet's own driver, not CCID (eToken PRO 64k 0529:0600)"),
    Family("096e", r"^ePass(2000|3000|3003)", "token",
           "Feitian ePass2000/3000/3003: Feitian's own driver, not CCID (libccid lists the ePass2003 only)"),
    Family("04f9", r"^ADS-", "scanner", "Brother ADS document scanners: Brother's brscan, not in sane-backends"),
    Family("04b8", r"^(GT-|ES-D)|Perfection", "scanner",
           "Epson GT, ES-D and Perfection scanners: Epson's own driver for the models sane-backends lacks"),
    Family("07b3", r"Scanner$", "scanner", "Plustek scanners (OpticBook, OpticPro, Mobile Office)"),
    Family("03f0", r"(?i)^scanjet", "scanner", "HP ScanJet scanners that sane-backends lacks"),
    Family("04a9", r"CanoScan|LiDE|^DR-", "scanner", "Canon Inc. CanoScan, LiDE and DR scanners"),
    Family("1083", r"^(DR-|P-|CR-|FSU-)", "scanner",
           "Canon Electronics imageFORMULA DR/P document, CR cheque and FSU scanners (DR-C225 is 1083:1658)"),
    Family("04c5", r"^fi-|ScanSnap", "scanner", "Fujitsu/PFU fi and ScanSnap document scanners"),
)  # fmt: skip


class SourceError(ValueError):
    """A source file is missing or not in the shape this generator reads."""


@dataclass(frozen=True)
class Row:
    vendor_id: str
    product_id: str
    kind: str
    model: str
    source: str


UsbIds = dict[str, tuple[str, dict[str, str]]]  # vendor -> (vendor name, product -> product name)


def sane_ids(text: str) -> Iterator[tuple[str, str, str]]:
    """(vendor, product, models) of each id in SANE's hwdb; the models are the comment above the id."""
    comment = ""
    for line in text.splitlines():
        if line.startswith("# "):
            comment = line[2:].strip()
            continue
        match = HWDB_ID_RE.match(line.strip())
        if match:
            yield match.group(1).lower(), match.group(2).lower(), comment
        elif not line.strip():
            comment = ""


def libccid_ids(data: bytes) -> Iterator[tuple[str, str, str]]:
    """(vendor, product, friendly name) of each reader in libccid's Info.plist."""
    plist = plistlib.loads(data)
    vendors, products, names = plist["ifdVendorID"], plist["ifdProductID"], plist["ifdFriendlyName"]
    if not len(vendors) == len(products) == len(names):
        raise SourceError("libccid_Info.plist: ifdVendorID, ifdProductID and ifdFriendlyName differ in length")
    for vendor, product, name in zip(vendors, products, names, strict=True):
        yield _hex4(vendor), _hex4(product), str(name)


def _hex4(value: str) -> str:
    text = str(value).lower().removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f]{4}", text):
        raise SourceError(f"libccid_Info.plist: {value!r} is not a USB id")
    return text


def usb_ids(text: str) -> UsbIds:
    """Vendors and their products from usb.ids (the device classes after them are not read)."""
    out: UsbIds = {}
    vendor = ""
    for line in text.splitlines():
        if line.startswith("C "):
            break
        if re.match(r"^[0-9a-f]{4}  ", line):
            vendor = line[:4]
            out[vendor] = (line[6:].strip(), {})
        elif re.match(r"^\t[0-9a-f]{4}  ", line) and vendor:
            out[vendor][1][line[1:5]] = line[7:].strip()
    return out


def usb_ids_model(database: UsbIds, vendor: str, product: str) -> str:
    """ "Canon CanoScan LiDE 300" from usb.ids, or "" when usb.ids lacks the id."""
    vendor_name, products = database.get(vendor, ("", {}))
    name = products.get(product, "")
    if not name:
        return ""
    return f"{VENDOR_SUFFIX_RE.sub('', vendor_name)} {name}".strip()


def rows(sane: str, ccid: bytes, ids: str, versions: dict[str, str]) -> list[Row]:
    """Every known id, one row each, sorted by vendor and product."""
    database = usb_ids(ids)
    out: dict[tuple[str, str], Row] = {}

    def add(vendor: str, product: str, kind: str, own_name: str, source: str) -> None:
        if (vendor, product) in out:
            return
        model = usb_ids_model(database, vendor, product) or own_name
        out[(vendor, product)] = Row(vendor, product, kind, model[:MAX_MODEL], source)

    for vendor, product, models in sane_ids(sane):
        add(vendor, product, "scanner", models, f"libsane1 {versions['libsane1']}")
    for vendor, product, name in libccid_ids(ccid):
        add(vendor, product, "token", name, f"libccid {versions['libccid']}")
    for family in FAMILIES:
        for product, name in database.get(family.vendor, ("", {}))[1].items():
            if re.search(family.pattern, name):
                add(family.vendor, product, family.kind, name, f"usb.ids {versions['usb.ids']}")
    return [out[key] for key in sorted(out)]


def to_csv(table: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in table:
        writer.writerow((row.vendor_id, row.product_id, row.kind, row.model, row.source))
    return buffer.getvalue()


def package_version(folder: Path, package: str) -> str:
    """The ``Version`` of the one ``<package>_*.deb`` in ``folder``, read from its control file."""
    debs = sorted(folder.glob(f"{package}_*.deb"))
    if len(debs) != 1:
        raise SourceError(f"{folder}: expected one {package}_*.deb, found {len(debs)}; run make known-ids")
    control = deb_control(debs[0].read_bytes(), debs[0].name)
    match = re.search(r"^Version: *(\S+)$", control, re.MULTILINE)
    if match is None:
        raise SourceError(f"{debs[0]}: its control file has no Version")
    return match.group(1)


def deb_control(deb: bytes, name: str) -> str:
    """The ``control`` file of a .deb: an ar archive whose ``control.tar.*`` member holds it."""
    if not deb.startswith(b"!<arch>\n"):
        raise SourceError(f"{name}: not a Debian package (no ar header)")
    offset = 8
    while offset + 60 <= len(deb):
        header = deb[offset : offset + 60]
        member, size = header[:16].decode("ascii").strip().rstrip("/"), int(header[48:58].decode("ascii"))
        body = deb[offset + 60 : offset + 60 + size]
        offset += 60 + size + (size % 2)
        if not member.startswith("control.tar"):
            continue
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
            for entry in tar.getmembers():
                if entry.name in ("control", "./control"):
                    extracted = tar.extractfile(entry)
                    if extracted is not None:
                        return extracted.read().decode("utf-8", errors="replace")
    raise SourceError(f"{name}: no control file found")


def generate(folder: Path) -> str:
    """The CSV text from the packages fetched into ``folder`` (``*.deb`` and their files under ``root/``)."""
    root = folder / "root"
    paths = [root / SANE_HWDB, root / LIBCCID_PLIST, root / USB_IDS]
    for path in paths:
        if not path.is_file():
            raise SourceError(f"{path} is missing; run make known-ids (it fetches {', '.join(PACKAGES)})")
    versions = {package: package_version(folder, package) for package in PACKAGES}
    sane = paths[0].read_text(encoding="utf-8")
    ids = paths[2].read_text(encoding="utf-8", errors="replace")
    return to_csv(rows(sane, paths[1].read_bytes(), ids, versions))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m devtools.known_ids PACKAGES_FOLDER OUTPUT_CSV", file=sys.stderr)
        return 2
    try:
        text = generate(Path(args[0]))
    except (SourceError, OSError, KeyError, ValueError, tarfile.TarError) as exc:
        print(f"known ids: {exc}", file=sys.stderr)
        return 2
    Path(args[1]).write_text(text, encoding="utf-8")
    print(f"{args[1]}: {text.count(chr(10)) - 1} ids", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
