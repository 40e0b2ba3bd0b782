"""commune-collector: the central service that turns agent reports into fleet state and time series.

The package installs on Python 3.8 for the agent's sake (``requires-python``); the collector itself
needs 3.11, so importing it on an older Python stops here with a sentence instead of a SyntaxError
or a missing ``tomllib`` deep inside.
"""

import sys

from common.version import VERSION as __version__

__all__ = ["MIN_PYTHON", "__version__"]

MIN_PYTHON = (3, 11)

if sys.version_info < MIN_PYTHON:
    raise SystemExit(
        f"commune-collector needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer; this is "
        f"{sys.version_info[0]}.{sys.version_info[1]} ({sys.executable}). "
        "Only the agent runs on Python 3.8+: pip install 'commune-monitor[agent]'."
    )
