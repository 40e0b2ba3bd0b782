"""The kernel's device events on Linux, so USB devices are listed when one comes or goes, not polled.

Listing ``/sys/bus/usb/devices`` every few seconds costs an old PC a wake-up of the whole agent
each time, most of the agent's CPU between reports. The kernel announces every device change on
a netlink socket (``NETLINK_KOBJECT_UEVENT``, multicast group 1, which any process may read; what
``udevadm monitor --kernel`` shows). Each message is ``ACTION@DEVPATH`` then ``KEY=VALUE`` fields,
each ending in a NUL byte (Documentation/ABI/testing/sysfs-uevent).

A USB device is listed again at its ``bind`` (sent once the device is configured, after its
interfaces were added: listing at ``add`` could read it before its interface classes exist) and at
its ``unbind`` or ``remove``. Kernels before 4.14 send no ``bind``; there, and whenever an event is
missed (a full socket buffer), the periodic listing (``[peripherals] rescan_interval_s``) catches up.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
from collections.abc import Callable, Collection

log = logging.getLogger("commune_agent.peripherals")

NETLINK_KOBJECT_UEVENT = 15
KERNEL_GROUP = 1
USB_DEVICE_CHANGES = frozenset({"bind", "unbind", "remove"})
RECEIVE_BUFFER = 256 * 1024


def parse_uevent(message: bytes) -> dict[str, str]:
    """The ``KEY=VALUE`` fields of one kernel uevent; empty for anything else (udev's own
    re-broadcasts start with ``libudev`` and are not read here)."""
    head, _, rest = message.partition(b"\0")
    if b"@" not in head:
        return {}
    fields: dict[str, str] = {}
    for item in rest.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            fields[key.decode("ascii", "replace")] = value.decode("utf-8", "replace")
    return fields


def is_usb_device_change(fields: dict[str, str]) -> bool:
    return (
        fields.get("SUBSYSTEM") == "usb"
        and fields.get("DEVTYPE") == "usb_device"
        and fields.get("ACTION") in USB_DEVICE_CHANGES
    )


class DeviceEvents:
    """Calls ``on_change`` (from its own thread) for each event ``wanted`` accepts."""

    def __init__(
        self, sock: socket.socket, on_change: Callable[[], None], wanted: Callable[[dict[str, str]], bool]
    ) -> None:
        self._sock = sock
        self._on_change = on_change
        self._wanted = wanted
        self._closed = False
        self.received = 0  # kernel messages read, wanted or not
        self._thread = threading.Thread(target=self._run, name="usb-events", daemon=True)

    @classmethod
    def open(
        cls, on_change: Callable[[], None], wanted: Callable[[dict[str, str]], bool] = is_usb_device_change
    ) -> DeviceEvents | None:
        """Listening, or None where the kernel offers no such socket (not Linux, a sandbox)."""
        family = getattr(socket, "AF_NETLINK", None)  # Linux only
        if family is None:
            return None
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM, NETLINK_KOBJECT_UEVENT)
        except OSError as exc:
            log.info("no kernel device events; usb devices are polled", extra={"error": str(exc)})
            return None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind((0, KERNEL_GROUP))
        except OSError as exc:
            sock.close()
            log.info("no kernel device events; usb devices are polled", extra={"error": str(exc)})
            return None
        return cls(sock, on_change, wanted)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the thread's recv
        self._sock.close()

    def _run(self) -> None:
        while not self._closed:
            try:
                message = self._sock.recv(RECEIVE_BUFFER)
            except OSError as exc:
                if self._closed:
                    return
                if exc.errno == errno.ENOBUFS:  # events were lost: list the devices now
                    self._on_change()
                    continue
                # anything else would fail again at once: stop listening, the periodic listing goes on
                log.warning(
                    "kernel device events stopped; usb devices listed every rescan interval", extra={"error": str(exc)}
                )
                return
            self.received += 1
            if self._wanted(parse_uevent(message)):
                self._on_change()


def subsystem_changes(subsystems: Collection[str]) -> Callable[[dict[str, str]], bool]:
    """Any event of these subsystems (tests use ``net``: this machine has no USB bus to plug into)."""
    return lambda fields: fields.get("SUBSYSTEM") in subsystems
