"""commune-collector: the central service that turns agent reports into fleet state and time series."""

__version__ = "0.1.0"
