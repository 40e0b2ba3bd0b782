"""A real PC/SC service for tests: Debian's ``pcscd`` with the ``vsmartcard-vpcd`` virtual reader, and
``vsmartcard-vpicc``'s ``vicc`` as the card put into it.

pcscd 1.9.9 always serves ``/run/pcscd/pcscd.comm`` (it does not read ``PCSCLITE_CSOCK_NAME``; the
client library does). So each pcscd runs in its own mount namespace with a folder of the test's
bound over ``/run/pcscd``, and in its own network namespace, where vpcd listens on its default port
35963 without meeting another test's: runs in parallel do not share anything. The client library
reads ``PCSCLITE_CSOCK_NAME`` once per process, so a test process uses one socket path
(``socket_path()``), and its pcscd instances follow one another there. Needs root (``unshare``).

Debian's vicc package installs its Python modules under ``/usr/lib/python3/site-packages``, which
no Python searches, and imports ``Crypto`` (pycryptodome, in the ``dev`` extra): vicc is run by
this interpreter with that folder on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VPCD_PORT = 35963
VPCD_CONF = """FRIENDLYNAME "Virtual PCD"
DEVICENAME   /dev/null:{port:#x}
LIBPATH      /usr/lib/pcsc/drivers/serial/libifdvpcd.so
CHANNELID    {port:#x}
"""
VICC_PATHS = ("/usr/lib/python3/site-packages/virtualsmartcard", "/usr/lib/python3/dist-packages")
READER = "Virtual PCD 00 00"  # vpcd's first slot; vicc connects to it


def socket_path() -> Path:
    """This process's pcscd socket, set in ``PCSCLITE_CSOCK_NAME`` before pyscard first connects."""
    path = Path(tempfile.gettempdir()) / f"commune-pcscd-{os.getpid()}" / "pcscd.comm"
    os.environ["PCSCLITE_CSOCK_NAME"] = str(path)
    return path


class Pcscd:
    """One pcscd in its own namespaces; ``card()`` puts a virtual card in its reader."""

    def __init__(self, work: Path, readers: bool = True) -> None:
        self.socket = socket_path()
        shutil.rmtree(self.socket.parent, ignore_errors=True)
        self.socket.parent.mkdir(parents=True)
        conf = work / "reader.conf.d"
        conf.mkdir(exist_ok=True)
        if readers:
            (conf / "vpcd").write_text(VPCD_CONF.format(port=VPCD_PORT))
        self.log = (work / "pcscd.log").open("wb")
        script = 'ip link set lo up && mkdir -p /run/pcscd && mount --bind "$0" /run/pcscd && exec pcscd -f -c "$1"'
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", script,
             str(self.socket.parent), str(conf)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pcscd did not start: {(work / 'pcscd.log').read_text()[-2000:]}")
            time.sleep(0.05)
        self.cards: list[subprocess.Popen[bytes]] = []

    def card(self) -> subprocess.Popen[bytes]:
        """vicc (an ISO 7816 card) connected to vpcd inside pcscd's network namespace."""
        found = [p for p in VICC_PATHS if Path(p, "virtualsmartcard", "VirtualSmartcard.py").exists()]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(found)}
        vicc = subprocess.Popen(
            ["nsenter", f"--net=/proc/{self.process.pid}/ns/net", sys.executable, "/usr/bin/vicc",
             "-t", "iso7816", "-P", str(VPCD_PORT)],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log,
        )  # fmt: skip
        self.cards.append(vicc)
        return vicc

    def stop(self) -> None:
        """pcscd ends as a service stopped by its administrator would (SIGTERM)."""
        for process in [*self.cards, self.process]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.cards, self.process]:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.log.close()
        shutil.rmtree(self.socket.parent, ignore_errors=True)  # the socket pcscd left


CLIENT = """
import sys, time
from smartcard import scard
result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
result, card, protocol = scard.SCardConnect(context, sys.argv[1], scard.SCARD_SHARE_SHARED,
                                            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
if result != 0:
    sys.exit(f"SCardConnect: {result:#x}")
print("connected", flush=True)
time.sleep(float(sys.argv[2]))
scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
scard.SCardReleaseContext(context)
"""


def open_card(reader: str, hold_s: float) -> None:
    """A real PC/SC application (pyscard in its own process) connects to the card, holds it, and closes."""
    done = subprocess.run([sys.executable, "-c", CLIENT, reader, str(hold_s)], capture_output=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"the PC/SC client failed: {done.stderr.decode()[-1000:]}")
