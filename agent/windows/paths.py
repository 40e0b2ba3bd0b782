"""Where the agent keeps its files on Windows: under ``%ProgramData%\\commune-agent`` (Windows only).

``%ProgramData%`` (usually ``C:\\ProgramData``) is the machine-wide data folder a service running
as LocalSystem writes to; the config is ``agent.toml`` there and the spool ``spool.sqlite``, as
``/etc/commune-agent`` and ``/var/lib/commune-agent`` on Linux.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import PureWindowsPath

APP = "commune-agent"
FALLBACK_PROGRAM_DATA = r"C:\ProgramData"


def program_data(environ: Mapping[str, str] = os.environ) -> PureWindowsPath:
    """``%ProgramData%\\commune-agent``; ``C:\\ProgramData`` when the variable is missing (a bare service)."""
    return PureWindowsPath(environ.get("ProgramData") or environ.get("PROGRAMDATA") or FALLBACK_PROGRAM_DATA) / APP


def config_path(environ: Mapping[str, str] = os.environ) -> PureWindowsPath:
    return program_data(environ) / "agent.toml"


def spool_path(environ: Mapping[str, str] = os.environ) -> PureWindowsPath:
    return program_data(environ) / "spool.sqlite"
