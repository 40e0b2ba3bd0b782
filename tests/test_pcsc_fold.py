"""The pure part of the PC/SC watch: reader states folded into a window's figures, the next window,
and which USB token a reader is. States are as pcsc-lite 1.9.9 returned them for vpcd and vicc
(``0x10022`` a card, ``0x10122`` a card open, ``0x100a2`` open exclusively, ``0x12`` empty)."""

from __future__ import annotations

from pathlib import Path

from agent.peripherals.classify import shipped_known_ids
from agent.peripherals.pcsc import PcscWatch, ReaderUse, fold, next_window
from agent.peripherals.smartcards import WithSmartcards, reader_devices, reader_item, reader_label
from agent.peripherals.source import UsbDevice
from agent.peripherals.sysfs import SysfsSource
from agent.peripherals.tracker import PeripheralsTracker

CARD, OPEN, EXCLUSIVE, EMPTY = 0x10020, 0x10120, 0x100A0, 0x10
R = "Virtual PCD 00 00"


def looks(*states: int, start: float = 1000.0) -> dict[str, ReaderUse]:
    readers: dict[str, ReaderUse] = {}
    for i, state in enumerate(states):
        readers = fold(readers, {R: state}, start + i)
    return readers


def test_a_card_never_opened_is_present_and_not_in_use() -> None:
    use = looks(EMPTY, CARD, CARD)[R]
    assert (use.card_present, use.card_now, use.in_use, use.opened, use.last_in_use) == (True, True, False, 0, 0.0)


def test_each_opening_counts_once_and_the_last_look_in_use_is_kept() -> None:
    use = looks(CARD, OPEN, OPEN, CARD, EXCLUSIVE, CARD)[R]
    assert (use.in_use, use.in_use_now, use.opened, use.last_in_use) == (True, False, 2, 1004.0)


def test_a_card_open_at_the_first_look_counts_as_opened() -> None:
    assert looks(OPEN)[R].opened == 1


def test_an_empty_reader_has_no_card_even_with_stale_bits() -> None:
    assert not looks(EMPTY | 0x20)[R].card_present


def test_a_reader_removed_is_kept_as_gone_until_the_next_window() -> None:
    readers = fold(looks(OPEN), {}, 2000.0)
    assert readers[R].gone and readers[R].in_use and not readers[R].in_use_now
    assert next_window(readers, 2001.0) == {}


def test_the_next_window_starts_from_now_and_a_card_still_open_is_in_use_in_it_not_opened_again() -> None:
    held = next_window(looks(CARD, OPEN), 3000.0)[R]
    assert (held.card_present, held.in_use, held.opened, held.last_in_use) == (True, True, 0, 3000.0)
    assert fold({R: held}, {R: OPEN}, 3001.0)[R].opened == 0
    idle = next_window(looks(OPEN, CARD), 3000.0)[R]
    assert (idle.card_present, idle.in_use, idle.opened, idle.last_in_use) == (True, False, 0, 0.0)


def token(serial: str, product: str, port: str = "1-1") -> UsbDevice:
    return UsbDevice(port, "096e", "080a", serial=serial, product=product)


def test_a_reader_is_tied_to_the_token_whose_serial_or_product_it_names() -> None:
    tokens = {"096e-080a-A1B2C3D4": token("A1B2C3D4", "ePass2003"), "163c-0407-X": token("", "Watchdata USB Key")}
    readers = ["FT ePass2003Auto [ePass2003] (A1B2C3D4) 00 00", "Watchdata USB Key 0", "Virtual PCD 00 00"]
    assert reader_devices(readers, tokens) == {
        "FT ePass2003Auto [ePass2003] (A1B2C3D4) 00 00": "096e-080a-A1B2C3D4",
        "Watchdata USB Key 0": "163c-0407-X",
    }


def test_one_token_and_one_unnamed_reader_are_tied_but_two_of_either_are_not() -> None:
    one = {"0529-0620-S": token("S1", "Token JC")}
    assert reader_devices(["Generic Reader 0"], one) == {"Generic Reader 0": "0529-0620-S"}
    assert reader_devices(["Generic Reader 0", "Generic Reader 1"], one) == {}
    two = {**one, "0529-0620-T": token("T1", "Token JC", "1-2")}
    assert reader_devices(["Token JC 00 00"], two) == {}  # both tokens' product: neither is told


def test_a_reader_item_names_the_reader_in_the_label_alphabet() -> None:
    item = reader_item(looks(CARD, OPEN)[R], "")
    assert reader_label("SafeNet eToken 5100 [eToken 5100] (0123ABCD) 00 00") == (
        "SafeNet_eToken_5100__eToken_5100___0123ABCD__00_00"
    )
    assert item == {"reader": "Virtual_PCD_00_00", "name": R, "card_now": 1, "card_present": 1, "in_use_now": 1,
                    "in_use": 1, "opened": 1, "last_in_use": 1001}  # fmt: skip


FIXTURE_BUS = Path(__file__).resolve().parent / "data" / "usb_sysfs" / "sys" / "bus" / "usb" / "devices"
TOKEN = "0529-0620-0A1B2C3D"  # the fixture bus's Aladdin Token JC, serial 0A1B2C3D


def test_the_token_tied_to_a_reader_is_marked_watched_in_every_report_after_even_unplugged() -> None:
    tracker = PeripheralsTracker(SysfsSource(FIXTURE_BUS), shipped_known_ids(), report_interval_s=0)
    watch = PcscWatch(scard=None)  # never started: the looks below stand for its thread's
    job = WithSmartcards(tracker, watch)
    watch._look({"Aladdin Token JC (0A1B2C3D) 00 00": OPEN, "Virtual PCD 00 00": CARD})
    sections = job()
    marked = {item["device"]: item.get("pcsc") for item in sections["peripherals"]}
    assert marked[TOKEN] == 1 and [d for d, pcsc in marked.items() if pcsc] == [TOKEN]
    assert {item["reader"]: item.get("device") for item in sections["smartcard"]} == {
        "Aladdin_Token_JC__0A1B2C3D__00_00": TOKEN,
        "Virtual_PCD_00_00": None,
    }
    watch._look({"Virtual PCD 00 00": CARD})  # the token's reader gone (unplugged)
    later = job()
    assert [item.get("pcsc") for item in later["peripherals"] if item["device"] == TOKEN] == [1]
    assert [item["reader"] for item in later["smartcard"]] == ["Aladdin_Token_JC__0A1B2C3D__00_00", "Virtual_PCD_00_00"]


def test_without_pc_sc_in_the_window_the_report_is_the_usb_one_alone() -> None:
    tracker = PeripheralsTracker(SysfsSource(FIXTURE_BUS), shipped_known_ids(), report_interval_s=0)
    sections = WithSmartcards(tracker, PcscWatch(scard=None))()
    assert list(sections) == ["peripherals"] and all("pcsc" not in item for item in sections["peripherals"])
