"""The two test tiers, as a pytest plugin loaded by ``tests/conftest.py``.

Why: ``pytest -m "not services"`` (``make test-fast``) must be a loop of pure tests that runs in
seconds and never starts anything, while ``make test`` keeps running every test against real
services. A mark people have to remember gets forgotten, so the tier is kept by two rules:

- **Marked from fixtures.** A test that uses one of ``SERVICE_FIXTURES`` (directly, or through a
  fixture of its own that uses one) is marked ``services`` at collection. A test or module that
  starts something itself (a CLI subprocess, Chromium, ``ping``, a venv) says so with
  ``@pytest.mark.services`` or ``pytestmark = pytest.mark.services``.
- **Guarded.** Every test without the mark runs (setup, call and teardown) with process creation
  switched off: ``subprocess`` (and so asyncio and Playwright), ``os.fork``/``forkpty``/``system``/
  ``posix_spawn`` and multiprocessing's spawn fail with ``ServiceInFastTier``, which names what was
  started. An attempt made in another thread and swallowed there still fails the test. So a pure
  test that starts a process fails in every run, ``make test`` included, with a message that
  says which mark to add.
"""

from __future__ import annotations

import multiprocessing.util
import os
import subprocess
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

MARK = "services"
# Fixtures that start a real service (conftest.py). Add a new one here when you add it there.
SERVICE_FIXTURES = frozenset(
    {
        "mosquitto",
        "influxd",
        "own_broker",
        "own_influxd",
        "database",
        "make_collector",
        "make_agent",
        "stack",
        "own_stack",
        "browser",
    }
)
MARK_HINT = (
    f"mark it @pytest.mark.{MARK} (or pytestmark = pytest.mark.{MARK} in the module), "
    f"or use a fixture of tests/tiers.py SERVICE_FIXTURES"
)


class ServiceInFastTier(RuntimeError):
    """A test without the ``services`` mark tried to start a process."""


def refusal(nodeid: str, what: str) -> str:
    return f"{nodeid} started a process ({what}) without the {MARK!r} mark: {MARK_HINT}"


def _describe(name: str, args: tuple[Any, ...]) -> str:
    if name == "subprocess" and args:
        argv = args[0]
        return " ".join(str(part) for part in argv) if isinstance(argv, list | tuple) else str(argv)
    return name


@contextmanager
def no_processes(nodeid: str) -> Iterator[list[str]]:
    """Within the block, every way of starting a process raises; yields the attempts made."""
    attempts: list[str] = []

    def refuse(name: str) -> Callable[..., Any]:
        def refused(*args: Any, **_kwargs: Any) -> Any:
            what = _describe(name, args[1:] if name == "subprocess" else args)
            attempts.append(what)
            raise ServiceInFastTier(refusal(nodeid, what))

        return refused

    targets: list[tuple[Any, str, str]] = [
        (subprocess.Popen, "_execute_child", "subprocess"),
        (os, "system", "os.system"),
        (os, "fork", "os.fork"),
        (os, "forkpty", "os.forkpty"),
        (os, "posix_spawn", "os.posix_spawn"),
        (os, "posix_spawnp", "os.posix_spawnp"),
        (multiprocessing.util, "spawnv_passfds", "multiprocessing"),
    ]
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _name in targets if hasattr(owner, attr)]
    for owner, attr, name in targets:
        if hasattr(owner, attr):
            setattr(owner, attr, refuse(name))
    try:
        yield attempts
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)


def is_services(item: pytest.Item) -> bool:
    return item.get_closest_marker(MARK) is not None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks every test that uses a service fixture, directly or through another fixture."""
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(MARK)


def _guarded(item: pytest.Item) -> Generator[None, Any, Any]:
    if is_services(item):
        return (yield)
    with no_processes(item.nodeid) as attempts:
        result = yield
    if attempts:
        raise ServiceInFastTier(refusal(item.nodeid, attempts[0]))
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _guarded(item))
