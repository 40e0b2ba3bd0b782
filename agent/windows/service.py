"""The agent as a Windows service, through pywin32's ``win32serviceutil`` (Windows only).

Unverified: this has not run on a Windows PC. ``commune-agent service install|remove|start|stop``
hands the action to ``win32serviceutil.HandleCommandLine``, which registers the class below
(start type automatic) with the service manager; the service reads
``%ProgramData%\\commune-agent\\agent.toml`` and runs the same ``AgentRunner`` as ``run`` on
Linux, until the service manager asks it to stop.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import servicemanager
import win32service
import win32serviceutil

from agent.config import load_config
from agent.runner import AgentRunner
from agent.windows.paths import config_path

ACTIONS = ("install", "remove", "start", "stop")


class AgentService(win32serviceutil.ServiceFramework):
    _svc_name_ = "commune-agent"
    _svc_display_name_ = "Commune monitor agent"
    _svc_description_ = "Measures this PC and its internet line and reports them to the province's collector."

    def __init__(self, args: Sequence[str]) -> None:
        super().__init__(args)
        self._stop = threading.Event()

    def SvcStop(self) -> None:
        self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING)
        self._stop.set()

    def SvcDoRun(self) -> None:
        servicemanager.LogInfoMsg(f"commune-agent starting with {config_path()}")
        AgentRunner(load_config(str(config_path()))).run(self._stop)


def handle(action: str) -> int:
    """Install, remove, start or stop the service; the service manager's answer is printed by pywin32."""
    argv = ["commune-agent", "--startup", "auto", action] if action == "install" else ["commune-agent", action]
    return int(win32serviceutil.HandleCommandLine(AgentService, argv=argv) or 0)
