"""The two test tiers (tests/tiers.py): service tests are marked from their fixtures, a fast-tier test
that starts a process fails and says which mark to add, and the fast tier runs with no service at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from realservices import REPO

pytest_plugins = ["pytester"]

INNER_CONFTEST = """
import pytest

pytest_plugins = ["tiers"]


@pytest.fixture
def mosquitto():
    return "a broker"


@pytest.fixture
def secured(mosquitto):
    return mosquitto
"""
INNER_INI = "[pytest]\nmarkers =\n    services: needs real services\naddopts = -p no:cacheprovider\n"
SERVICE_BINARIES = ("/usr/sbin/mosquitto", "/usr/bin/influxd", "/usr/bin/chromium", "/usr/bin/mosquitto_passwd")


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INNER_INI)
    pytester.makeconftest(INNER_CONFTEST)
    return pytester


def test_tests_using_a_service_fixture_directly_or_through_another_fixture_are_marked(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        def test_direct(mosquitto): pass
        def test_through_a_fixture(secured): pass
        def test_pure(tmp_path): pass
        """
    )

    fast = inner.runpytest_inprocess("-m", "not services", "-v")
    fast.assert_outcomes(passed=1, deselected=2)
    fast.stdout.fnmatch_lines(["*::test_pure PASSED*"])
    slow = inner.runpytest_inprocess("-m", "services", "-v")
    slow.assert_outcomes(passed=2, deselected=1)
    slow.stdout.fnmatch_lines(["*::test_direct PASSED*", "*::test_through_a_fixture PASSED*"])


def test_a_fast_tier_test_that_starts_a_process_fails_and_says_which_mark_to_add(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import subprocess
        import threading

        def test_starts_true():
            subprocess.run(["true"], check=True)

        def test_starts_one_in_a_thread_and_swallows_the_error():
            def start():
                try:
                    subprocess.run(["true"], check=True)
                except Exception:
                    pass
            thread = threading.Thread(target=start)
            thread.start()
            thread.join()
        """
    )

    result = inner.runpytest_inprocess()

    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*test_starts_true started a process (true) without the 'services' mark*"])
    result.stdout.fnmatch_lines(["*test_starts_one_in_a_thread* started a process (true)*@pytest.mark.services*"])


@pytest.mark.services  # the inner test starts `true`, which the outer guard allows only here
def test_a_marked_test_may_start_processes(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import subprocess
        import pytest

        @pytest.mark.services
        def test_starts_true():
            subprocess.run(["true"], check=True)

        def test_uses_the_broker(mosquitto):
            subprocess.run(["true"], check=True)
        """
    )

    inner.runpytest_inprocess().assert_outcomes(passed=2)


@pytest.mark.services  # runs pytest in a private mount namespace
def test_the_fast_tier_passes_with_broker_influxd_and_chromium_unusable(tmp_path: Path) -> None:
    present = [binary for binary in SERVICE_BINARIES if os.path.exists(binary)]
    hide = "".join(f"mount --bind /dev/null {binary} && [ ! -x {binary} ] && " for binary in present)
    fast_tier = f"{sys.executable} -m pytest -q -m 'not services' -p no:cacheprovider --basetemp {tmp_path / 'fast'}"
    done = subprocess.run(
        ["unshare", "--mount", "--map-root-user", "sh", "-c", f"{hide}exec {fast_tier}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert present, "make test installs mosquitto, influxd and chromium: hiding them is the point"
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " deselected" in done.stdout, done.stdout[-3000:]
