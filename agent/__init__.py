"""commune-agent: the small background service that reports a commune PC's health."""

__version__ = "0.1.0"
