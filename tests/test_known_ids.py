"""The agent's known USB ids against the data they come from: SANE's hwdb (libsane1), libccid's
Info.plist and usb.ids, as Debian ships them (``make known-ids-sources`` fetches them into
build/known-ids; ``make test`` does it first). The ids are read here from the packages' own files,
not from the generator, and shown to the agent's real sysfs reader as devices on a USB bus."""

from __future__ import annotations

import csv
import json
import plistlib
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.peripherals.classify import classify, parse_known_ids, shipped_known_ids
from agent.peripherals.source import UsbDevice
from agent.peripherals.sysfs import SysfsSource
from devtools import known_ids as generator

REPO = Path(__file__).resolve().parents[1]
PACKAGES = REPO / "build" / "known-ids"
SHIPPED = REPO / "agent" / "peripherals" / "known_ids.csv"
TARGET = 0.95


def package_file(relative: str) -> Path:
    path = PACKAGES / "root" / relative
    assert path.is_file(), f"{path} is missing: run `make known-ids-sources` (make test does)"
    return path


def sane_ids() -> list[tuple[str, str]]:
    text = package_file(generator.SANE_HWDB).read_text(encoding="utf-8")
    return [(v.lower(), p.lower()) for v, p in re.findall(r"^usb:v(\w{4})p(\w{4})\*$", text, re.MULTILINE)]


def libccid_ids() -> list[tuple[str, str]]:
    plist = plistlib.loads(package_file(generator.LIBCCID_PLIST).read_bytes())
    return [(v[2:].lower(), p[2:].lower()) for v, p in zip(plist["ifdVendorID"], plist["ifdProductID"], strict=True)]


def write_bus(root: Path, ids: list[tuple[str, str]], device_class: str, interfaces: tuple[str, ...]) -> None:
    """One device per id as the kernel lays it out: ``<port>/idVendor``, ``<port>/<port>:1.N/bInterfaceClass``."""
    for number, (vendor, product) in enumerate(ids, start=1):
        port = f"1-{number}"
        device = root / port
        device.mkdir(parents=True)
        (device / "idVendor").write_text(f"{vendor}\n")
        (device / "idProduct").write_text(f"{product}\n")
        (device / "bDeviceClass").write_text(f"{device_class}\n")
        for index, interface_class in enumerate(interfaces):
            (device / f"{port}:1.{index}").mkdir()
            (device / f"{port}:1.{index}" / "bInterfaceClass").write_text(f"{interface_class}\n")


def recognised_share(root: Path, ids: list[tuple[str, str]], kind: str) -> float:
    known = shipped_known_ids()
    devices = SysfsSource(root).devices()
    assert {(d.vendor_id, d.product_id) for d in devices} == set(ids)  # the reader saw every device
    hits = [d for d in devices if (found := classify(d, known)) is not None and found.kind == kind]
    return len(hits) / len(devices)


def test_the_committed_known_ids_are_what_the_debian_packages_give() -> None:
    fresh = generator.generate(PACKAGES)
    assert SHIPPED.read_text(encoding="utf-8") == fresh, "known_ids.csv is stale: run `make known-ids` and commit it"


def test_every_sane_scanner_shown_as_a_vendor_specific_device_is_a_scanner(tmp_path: Path) -> None:
    ids = sane_ids()
    assert len(ids) > 1000
    write_bus(tmp_path, ids, "00", ("ff",))  # as real scanners present themselves: one vendor-class interface
    share = recognised_share(tmp_path, ids, "scanner")
    assert share >= TARGET, f"SANE: {share:.1%} of {len(ids)} ids recognised as scanners"
    assert share == 1.0, f"SANE: {share:.1%} of {len(ids)} ids recognised as scanners"


def test_every_libccid_reader_and_token_is_a_token_even_without_its_ccid_interface(tmp_path: Path) -> None:
    ids = libccid_ids()
    assert len(ids) > 500
    write_bus(tmp_path, ids, "00", ("ff",))  # worst case: known by id alone, not by class 0b
    share = recognised_share(tmp_path, ids, "token")
    assert share >= TARGET, f"libccid: {share:.1%} of {len(ids)} ids recognised as tokens"
    assert share == 1.0, f"libccid: {share:.1%} of {len(ids)} ids recognised as tokens"


def test_the_usb_ids_families_give_the_tokens_libccid_lacks_and_the_scanners_sane_lacks() -> None:
    rows = {(r["vendor_id"], r["product_id"]): r for r in csv.DictReader(SHIPPED.read_text().splitlines())}
    usb_ids = generator.usb_ids(package_file(generator.USB_IDS).read_text(encoding="utf-8", errors="replace"))
    etoken = rows[("0529", "0600")]  # eToken PRO 64k: not CCID, so not in libccid
    assert (etoken["kind"], etoken["source"].split()[0]) == ("token", "usb.ids")
    assert "eToken Pro" in etoken["model"]
    assert rows[("096e", "0005")]["kind"] == "token"  # Feitian ePass2000
    assert rows[("04f9", "60a1")]["kind"] == "scanner"  # Brother ADS-2100: Brother's own driver
    assert rows[("1083", "1658")]["model"] == "Canon Electronics DR-C225"  # in SANE; model text from usb.ids
    from_usb_ids = [r for r in rows.values() if r["source"].startswith("usb.ids ")]
    assert len(from_usb_ids) > 50
    for row in from_usb_ids:  # each is a product usb.ids names, under a family the generator documents
        name = usb_ids[row["vendor_id"]][1][row["product_id"]]
        families = [f for f in generator.FAMILIES if f.vendor == row["vendor_id"] and re.search(f.pattern, name)]
        assert families and families[0].kind == row["kind"], row


def test_every_row_cites_its_package_and_version_and_sources_do_not_overlap() -> None:
    rows = list(csv.DictReader(SHIPPED.read_text().splitlines()))
    versions = {package: generator.package_version(PACKAGES, package) for package in generator.PACKAGES}
    cited = {f"{package} {version}" for package, version in versions.items()}
    assert {row["source"] for row in rows} == cited
    assert len({(r["vendor_id"], r["product_id"]) for r in rows}) == len(rows) == len(shipped_known_ids())
    assert sum(r["source"].startswith("libsane1 ") for r in rows) == len(set(sane_ids()))
    assert sum(r["source"].startswith("libccid ") for r in rows) == len(set(libccid_ids()))


def test_the_shipped_file_stays_small() -> None:
    assert SHIPPED.stat().st_size < 160_000  # bundled in the agent's package and its single-file binary


@pytest.mark.parametrize(
    ("interfaces", "kind"),
    [
        (("03", "0b"), "token"),  # ePass2003Auto: HID on interface 0, CCID on interface 1
        (("08", "0b"), "token"),  # a token with a virtual CD holding its driver
        (("0b",), "token"),
        (("07", "ff"), "printer"),
        (("03",), None),  # a keyboard or mouse is not reported
        (("08",), "other"),
    ],
)
def test_class_rules_still_check_every_interface_of_an_unknown_device(interfaces: tuple[str, ...], kind: str) -> None:
    device = UsbDevice("1-1", "f00d", "0001", product="P", device_class="00", interface_classes=interfaces)
    found = classify(device, shipped_known_ids())
    assert (None if found is None else found.kind) == kind


def test_a_canon_electronics_scanner_is_known_by_id_and_a_local_row_wins_over_the_shipped_one() -> None:
    scanner = UsbDevice("1-2", "1083", "1658", product="", device_class="00", interface_classes=("ff",))
    found = classify(scanner, shipped_known_ids())
    assert found is not None and (found.kind, found.model) == ("scanner", "Canon Electronics DR-C225")
    local = parse_known_ids("vendor_id,product_id,kind,model,source\n1083,1658,other,Lab unit,local\n", "extra")
    mine = classify(scanner, {**shipped_known_ids(), **local})
    assert mine is not None and mine.kind == "other"


def test_a_bad_source_is_a_one_line_error_and_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert generator.main([str(tmp_path), str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "make known-ids" in err
    assert not (tmp_path / "out.csv").exists()
    with pytest.raises(generator.SourceError, match="differ in length"):
        list(generator.libccid_ids(plistlib.dumps({"ifdVendorID": ["0x1"], "ifdProductID": [], "ifdFriendlyName": []})))
    with pytest.raises(generator.SourceError, match="not a Debian package"):
        generator.deb_control(b"nonsense", "x.deb")


@pytest.mark.services  # runs the agent's CLI
@pytest.mark.parametrize(("source", "kind"), [("SANE", "scanner"), ("libccid", "token")])
def test_a_real_agent_shown_60_ids_of_a_source_reports_each_as_its_kind(source: str, kind: str, tmp_path: Path) -> None:
    ids = sane_ids() if source == "SANE" else libccid_ids()
    drawn = random.Random(26).sample(sorted(set(ids)), 60)  # a report holds at most 64 devices
    bus = tmp_path / "devices"
    write_bus(bus, drawn, "00", ("ff",))
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[identity]\nprovince = "08"\ncommune = "02473"\n[spool]\npath = "{tmp_path / "spool.sqlite"}"\n'
        f'[probe]\ngateway = false\n[peripherals]\nsysfs_root = "{bus}"\n'
    )
    done = subprocess.run([sys.executable, "-m", "agent.cli", "once", "-c", str(config)], capture_output=True,
                          text=True, cwd=REPO, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    items = json.loads(done.stdout)["peripherals"]["peripherals"]
    assert {(i["vendor_id"], i["product_id"]) for i in items} == set(drawn)
    recognised = [i for i in items if i["kind"] == kind]
    assert len(recognised) / len(items) >= TARGET, f"{source}: {len(recognised)} of {len(items)} as {kind}"
    assert len(recognised) == len(items), f"{source}: {len(recognised)} of {len(items)} as {kind}"
