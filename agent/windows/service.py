"""The agent as a Windows service, through pywin32's ``win32serviceutil`` (Windows only).

Unverified: this has not run on a Windows PC. ``commune-agent service install|remove|start|stop``
hands the action to ``win32serviceutil.HandleCommandLine``, which registers the class below
(start type automatic) with the service manager; the service reads
``%ProgramData%\\commune-agent\\agent.toml`` and runs the same ``AgentRunner`` as ``run`` on
Linux, until the service manager asks it to stop.

Two ways to be hosted. From a Python install, pywin32 registers its ``pythonservice.exe``, which
imports this class. From the single-file ``commune-agent.exe`` (PyInstaller), pywin32 registers the
exe itself (``LocatePythonServiceExe`` gives ``sys.executable`` when frozen), and the service
manager starts it with no arguments: ``agent.cli`` then calls ``host_service``, the hand-over
pywin32 documents for frozen services (``servicemanager.Initialize``, ``PrepareToHostSingle``,
``StartServiceCtrlDispatcher``), which returns when the service has stopped.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

import pywintypes
import servicemanager
import win32service
import win32serviceutil
import winerror

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


def host_service() -> int:
    """The frozen exe, started by the service manager: hand this process over to it. Started by hand
    with no command instead, the dispatcher cannot reach the service manager: a one-line error, 2."""
    servicemanager.Initialize()
    servicemanager.PrepareToHostSingle(AgentService)
    try:
        servicemanager.StartServiceCtrlDispatcher()  # type: ignore[no-untyped-call]  # stubs lack its types
    except pywintypes.error as exc:
        if exc.winerror != winerror.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT:
            raise
        print("commune-agent: no command given (run, once, enroll, service); see commune-agent --help", file=sys.stderr)
        return 2
    return 0
