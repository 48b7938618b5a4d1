"""Helpers for the command-line tests: passphrase vaults, ``--passphrase-fd`` pipes,
and the one-line-error check every failure path must pass."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from typing import Any

import pytest

# The shared fixtures' types, by duck typing: ``tests`` is not a package, so this file
# does not import ``tests/conftest.py`` by name.
Cli = Any
Result = Any

PASSPHRASE = "correct horse battery staple"
RECOVERY_RE = re.compile(r"\b[A-Z2-7]{5}(?:-[A-Z2-7]{5}){7}\b")


def with_fd_secret(cli: Cli, secret: str, *args: str, **kwargs: object) -> Result:
    """Run ``aegis-vault --passphrase-fd N ARGS`` with ``secret`` on an inherited pipe."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, secret.encode() + b"\n")
        os.close(write_end)
        write_end = -1
        return cli("--passphrase-fd", str(read_end), *args, pass_fds=(read_end,), **kwargs)  # type: ignore[arg-type]
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def recovery_key_from(output: str) -> str:
    found = RECOVERY_RE.findall(output)
    assert len(found) == 1, f"expected exactly one recovery key in the output, got {len(found)}"
    return found[0]


def assert_one_line_error(result: Result, code: int, *, mentions: tuple[str, ...] = ()) -> str:
    """The documented exit code, exactly one ``aegis-vault: ...`` line, no traceback."""
    assert result.returncode == code, (result.returncode, result.err)
    assert "Traceback" not in result.err, result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {result.err!r}"
    assert lines[0].startswith("aegis-vault: "), lines[0]
    for word in mentions:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    return lines[0]


def vault_bytes(home: Path) -> bytes:
    """The vault file and its SQLite companions, concatenated (missing ones count as empty)."""
    data = b""
    for suffix in ("", "-wal", "-shm"):
        path = home / f"vault.db{suffix}"
        data += b"|" + (path.read_bytes() if path.exists() else b"")
    return data


@dataclass
class PassVault:
    """A vault with a passphrase slot (and its recovery slot)."""

    cli: Cli
    home: Path
    recovery: str

    def run(self, *args: str, passphrase: str = PASSPHRASE, **kwargs: object) -> Result:
        return with_fd_secret(self.cli, passphrase, *args, **kwargs)


@pytest.fixture
def pass_vault(cli: Cli, home: Path) -> PassVault:
    result = cli("init", "--passphrase-stdin", input=PASSPHRASE + "\n")
    assert result.returncode == 0, result.err
    return PassVault(cli, home, recovery_key_from(result.out))


# ``tests`` is not a package, so test modules cannot import this file by name: the
# helpers above reach them as fixtures.
@pytest.fixture
def with_fd():  # type: ignore[no-untyped-def]
    return with_fd_secret


@pytest.fixture
def expect_error():  # type: ignore[no-untyped-def]
    return assert_one_line_error


@pytest.fixture
def recovery_key():  # type: ignore[no-untyped-def]
    return recovery_key_from


@pytest.fixture
def snapshot(home: Path):  # type: ignore[no-untyped-def]
    """``snapshot()``: the vault's bytes (db, wal, shm) right now."""
    return lambda: vault_bytes(home)
