"""devtools/glibc_floor.py reads the glibc a binary needs from ``objdump -T`` (pure tier; the check
of the real binary is in tests/test_agent_binary.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.glibc_floor import glibc_versions, main

# Recorded: lines of `objdump -T /lib/x86_64-linux-gnu/libssl.so.3` (Debian 12, OpenSSL 3.0) and one
# of libc.so.6's GLIBC_PRIVATE symbols.
OBJDUMP_LIBSSL = """
/lib/x86_64-linux-gnu/libssl.so.3:     file format elf64-x86-64

DYNAMIC SYMBOL TABLE:
0000000000000000      DF *UND*	0000000000000000 (OPENSSL_3.0.0) OPENSSL_sk_dup
0000000000000000  w   DF *UND*	0000000000000000 (GLIBC_2.2.5) __cxa_finalize
0000000000000000      DF *UND*	0000000000000000 (GLIBC_2.14) memcpy
0000000000000000      DF *UND*	0000000000000000 (GLIBC_2.3.4) __sprintf_chk
0000000000000000      DF *UND*	0000000000000000 (GLIBC_2.33) stat
0000000000000000      DF *UND*	0000000000000000 (GLIBC_2.4)  __stack_chk_fail
0000000000000000      DF *UND*	0000000000000000 (GLIBC_PRIVATE) _dl_exception_create
"""


def test_glibc_versions_are_read_as_numbers_so_2_33_is_newer_than_2_4() -> None:
    versions = glibc_versions(OBJDUMP_LIBSSL)
    assert versions == {(2, 2), (2, 14), (2, 3), (2, 33), (2, 4)}  # GLIBC_PRIVATE and OPENSSL_* are not glibc floors
    assert max(versions) == (2, 33)


def test_output_without_glibc_symbols_gives_no_version() -> None:
    assert glibc_versions("DYNAMIC SYMBOL TABLE:\n0000 DF *UND* 0000 (OPENSSL_3.0.0) OPENSSL_sk_dup\n") == set()


def test_a_missing_binary_is_a_one_line_error_and_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "commune-agent")]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and "make agent-binary" in error
