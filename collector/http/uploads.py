"""How many speed-test uploads the endpoint takes at once, and how long it waits on a quiet one.

speedtest-cli 2.1.3 declares 65,536 bytes for one of its upload sizes and sends 65,529; any client
can stop sending halfway. Waiting for the declared length would hold such an upload until the
client gives up, so the endpoint answers once the body has been quiet for ``idle_s`` with the size
it actually received. A fixed number of upload slots keeps slow or stalled clients from holding
every worker; an upload beyond them is refused at once (503) rather than queued.
"""

from __future__ import annotations


class UploadGate:
    """Upload slots taken without waiting (the endpoint runs on one event loop: no lock needed)."""

    def __init__(self, max_concurrent: int = 8, idle_s: float = 2.0) -> None:
        self.max_concurrent = max_concurrent
        self.idle_s = idle_s
        self.active = 0

    def enter(self) -> bool:
        """Take a slot; False when all are taken."""
        if self.active >= self.max_concurrent:
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        self.active -= 1
