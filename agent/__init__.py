"""commune-agent: the small background service that reports a commune PC's health."""

from common.version import VERSION as __version__

__all__ = ["__version__"]
