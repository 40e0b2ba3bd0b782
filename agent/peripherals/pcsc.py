"""Smart-card readers watched through PC/SC: was a card there, and did an application open it.

A signature token is a smart card in a USB reader. Seeing it plugged in says nothing about use; an
application that opens it to sign does. PC/SC (``winscard`` on Windows, ``pcscd`` on Linux, through
pyscard's ``smartcard.scard``) shows that without a PIN: ``SCardGetStatusChange`` gives each
reader's state, ``SCARD_STATE_PRESENT`` for a card and ``SCARD_STATE_INUSE`` or
``SCARD_STATE_EXCLUSIVE`` while an application holds a connection to it.

Every ``poll_s`` the thread lists the readers and asks their states as an application "unaware"
of them, so the call answers at once (one round trip, about 10 µs with pcsc-lite 1.9.9; a call
that waits for a change costs 100 to 900 µs of CPU in pcsc-lite's client when it times out, and
pcsc-lite does not wake it for a connection anyway, only for a card or reader coming or going).
A connection shorter than ``poll_s`` between two looks can be missed; a token manager that holds
the card open all day shows as in use all day. PC/SC shows that an application opened the card,
never that a signature was made.

What is gathered here is folded by the pure ``fold`` (tested on recorded states); ``take`` hands
the readers' figures since the last take to the report and starts the next window. No pyscard, no
PC/SC service or no reader: the agent goes on with one warning (``PcscWatch``), and its report says
the PC has no PC/SC (``available`` is False).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

log = logging.getLogger("commune_agent.pcsc")

# The PC/SC constants used (the same numbers in pcsc-lite and winscard).
STATE_UNAWARE = 0x0000
STATE_CHANGED = 0x0002
STATE_EMPTY = 0x0010
STATE_PRESENT = 0x0020
STATE_EXCLUSIVE = 0x0080
STATE_INUSE = 0x0100
SCARD_S_SUCCESS = 0x0
SCARD_E_TIMEOUT = 0x8010000A
SCARD_E_UNKNOWN_READER = 0x80100009
SCARD_E_NO_READERS_AVAILABLE = 0x8010002E
MAX_READERS = 16  # pcsc-lite's own limit of readers per service


@dataclass(frozen=True)
class ReaderUse:
    """One reader's figures for the window since the last take."""

    name: str
    card_now: bool = False  # a card in it at the last look
    in_use_now: bool = False  # an application had it open at the last look
    card_present: bool = False  # a card in it at any look in the window
    in_use: bool = False  # an application had it open at any look in the window
    opened: int = 0  # looks that found it newly open (closed, or not yet known, at the look before)
    last_in_use: float = 0.0  # UTC seconds of the last look that found it open; 0 when none in the window
    gone: bool = False  # the reader was removed (a token unplugged) since the last take


def in_use(state: int) -> bool:
    return bool(state & (STATE_INUSE | STATE_EXCLUSIVE))


def has_card(state: int) -> bool:
    return bool(state & STATE_PRESENT) and not state & STATE_EMPTY


def fold(readers: dict[str, ReaderUse], states: dict[str, int], now: float) -> dict[str, ReaderUse]:
    """One look at the readers (name -> ``dwEventState``) folded into the window's figures.

    A reader missing from ``states`` is marked gone (kept until the next take); a new one starts
    with its first look, and one open at its first look counts as opened once."""
    out: dict[str, ReaderUse] = {}
    for name, before in readers.items():
        if name not in states:
            out[name] = replace(before, card_now=False, in_use_now=False, gone=True)
    for name, state in states.items():
        before = readers.get(name) or ReaderUse(name)
        card, used = has_card(state), in_use(state)
        out[name] = replace(
            before,
            card_now=card,
            in_use_now=used,
            card_present=before.card_present or card,
            in_use=before.in_use or used,
            opened=before.opened + (1 if used and not before.in_use_now else 0),
            last_in_use=now if used else before.last_in_use,
            gone=False,
        )
    return out


def next_window(readers: dict[str, ReaderUse], now: float) -> dict[str, ReaderUse]:
    """After a take: gone readers go; the others start the new window as they are now (one still
    open counts as in use in it from this moment, not as opened again)."""
    return {
        name: ReaderUse(
            name,
            card_now=r.card_now,
            in_use_now=r.in_use_now,
            card_present=r.card_now,
            in_use=r.in_use_now,
            last_in_use=now if r.in_use_now else 0.0,
        )
        for name, r in readers.items()
        if not r.gone
    }


def load_scard() -> Any | None:
    """pyscard's ``smartcard.scard``, or None when pyscard is not installed (or its library is not)."""
    try:
        from smartcard import scard
    except Exception as exc:  # ImportError, or OSError for a missing libpcsclite / winscard
        log.info("no PC/SC: pyscard cannot be loaded", extra={"error": str(exc)[:200]})
        return None
    return scard


class PcscWatch:
    """A daemon thread watching every PC/SC reader; ``take`` hands over the figures since the last take.

    ``scard`` is pyscard's ``smartcard.scard`` (``load_scard``). The service missing or stopping: one
    warning, then a new try every ``retry_s``, quietly, until the service answers again. No reader:
    one warning, until a reader appears."""

    def __init__(self, scard: Any, poll_s: float = 5.0, retry_s: float = 60.0, clock: Callable[[], float] = time.time):
        self._scard = scard
        self._poll_s = poll_s
        self._retry_s = retry_s
        self._clock = clock
        self._lock = threading.Lock()
        self._readers: dict[str, ReaderUse] = {}
        self._states: dict[str, int] = {}  # the readers' states at the last look
        self._available = False  # the service answered at the last look
        self._available_in_window = False
        self._down_warned = False  # warned that the service is missing or stopped, and it has not answered since
        self._no_reader_warned = False  # warned that the service has no reader, and none has appeared since
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pcsc-watch", daemon=True)
        self.looks = 0  # calls of SCardGetStatusChange that returned (for the bench and tests)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(30)

    def take(self) -> tuple[bool, list[ReaderUse]]:
        """Whether PC/SC answered in the window, and each reader's figures since the last take."""
        now = self._clock()
        with self._lock:
            available = self._available_in_window or self._available
            readers = sorted(self._readers.values(), key=lambda r: r.name)
            self._readers = next_window(self._readers, now)
            self._states = {}  # the next look folds into the new window
            self._available_in_window = self._available
        return available, readers

    def _run(self) -> None:
        while not self._stop.is_set():
            trouble = self._watch()
            with self._lock:
                self._available = False
            if trouble and not self._down_warned:
                log.warning("PC/SC unavailable, smart-card use not observed", extra={"reason": trouble})
                self._down_warned = True
            self._stop.wait(self._retry_s)

    def _watch(self) -> str:
        """Watch until the service fails or ``close``; what went wrong ("" for a close)."""
        scard = self._scard
        try:
            result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        except Exception as exc:  # pyscard raises for some failures instead of returning them
            return f"no service: {exc}"[:200]
        if result != SCARD_S_SUCCESS:
            return f"no service: {result:#x}"
        try:
            return self._loop(context)
        finally:
            with contextlib.suppress(Exception):  # the service is gone: nothing to release
                scard.SCardReleaseContext(context)

    def _loop(self, context: Any) -> str:
        scard = self._scard
        while not self._stop.is_set():
            names = self._list(context)
            if names is None:
                return "service stopped"
            if not names and not self._no_reader_warned:
                log.warning("PC/SC has no reader, smart-card use not observed until one appears")
                self._no_reader_warned = True
            states: list[tuple[str, int, Any]] = []
            if names:  # "unaware" of every reader: the call answers at once with their states
                try:
                    result, states = scard.SCardGetStatusChange(context, 0, [(name, STATE_UNAWARE) for name in names])
                except Exception as exc:
                    return f"service stopped: {exc}"[:200]
                if result == SCARD_E_UNKNOWN_READER:  # a reader went between the listing and the call
                    continue
                if result not in (SCARD_S_SUCCESS, SCARD_E_TIMEOUT):
                    return f"service stopped: {result:#x}"
            self._look({name: state & ~STATE_CHANGED for name, state, _atr in states})
            if names and (self._down_warned or self._no_reader_warned):
                log.info("PC/SC watched again", extra={"readers": len(names)})
            self._down_warned = False
            self._no_reader_warned = self._no_reader_warned and not names
            self._stop.wait(self._poll_s)
        return ""

    def _list(self, context: Any) -> list[str] | None:
        """The readers' names ([] for none), or None when the service no longer answers."""
        try:
            result, names = self._scard.SCardListReaders(context, [])
        except Exception:
            return None
        if result == SCARD_E_NO_READERS_AVAILABLE:
            return []
        if result != SCARD_S_SUCCESS:
            return None
        return [str(name) for name in names][:MAX_READERS]

    def _look(self, states: dict[str, int]) -> None:
        now = self._clock()
        with self._lock:
            self.looks += 1
            self._available = self._available_in_window = True
            if states == self._states and not any(r.in_use_now for r in self._readers.values()):
                return  # the same as at the last look and nobody using a card: nothing to fold
            self._readers = fold(self._readers, states, now)
            self._states = states
