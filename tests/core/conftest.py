"""Fixtures for the core-library tests: real vault files in tmp, a clock the test drives.

Test modules reach the helpers below through the ``kit`` fixture (two ``conftest.py``
files exist, so ``from conftest import ...`` would be ambiguous). Nothing here is mocked. A "vault" fixture is a real SQLite file made by ``Vault.create``
with the fast test KDF; raw SQL access goes through a second, independent ``sqlite3``
connection, exactly as an attacker holding the file would.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import pytest

from aegis_tui.core.actor import Actor
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.crypto import KdfParams, new_kdf_params
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault

PASSPHRASE = "correct horse battery staple"
OTHER_PASSPHRASE = "tr0ub4dor&3 is not it"
ENV_KEY = "5f" * 32  # 64 hex characters: an AEGIS_VAULT_KEY value for tests only
WRONG_ENV_KEY = "a0" * 32
START = 1_750_000_000.0  # a fixed "now" (2025-06-15) for the controllable clock
DAY = 86400.0


def fast_kdf() -> KdfParams:
    """Argon2id at the cheapest settings: for tests only, never for real vaults."""
    return new_kdf_params(memory_kib=8, iterations=1, lanes=1)


TEST_ACTOR = Actor(user="tester", uid=1000, pid=4242, program="pytest", parent_pid=1, parent="init",
                   session_id="core-tests")


class Clock:
    """A clock the test moves by hand: ``Vault(..., clock=Clock())``."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Made(NamedTuple):
    vault: Vault
    path: Path
    recovery: str
    clock: Clock


def private_dir(parent: Path, name: str = "vault") -> Path:
    folder = parent / name
    folder.mkdir(mode=0o700)
    os.chmod(folder, 0o700)  # independent of the umask
    return folder


def create_vault(path: Path, clock: Clock | None = None, *, passphrase: bool = True, env: bool = True) -> Made:
    clock = clock or Clock()
    vault, code = Vault.create(
        path,
        passphrase=Secret(PASSPHRASE) if passphrase else None,
        kdf=fast_kdf() if passphrase else None,
        env_key=ENV_KEY if env else None,
        clock=clock,
        actor=TEST_ACTOR,
    )
    return Made(vault, path, code, clock)


def open_unlocked(path: Path, clock: Clock | None = None) -> Vault:
    vault = Vault.open(path, clock=clock or Clock(), actor=TEST_ACTOR)
    vault.unlock_with_env_key(ENV_KEY)
    return vault


@contextmanager
def raw_db(path: Path | str) -> Iterator[sqlite3.Connection]:
    """A second, independent connection to the vault file: the attacker's view."""
    conn = sqlite3.connect(os.fspath(path), isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def dump_tables(path: Path | str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every vault table, in a stable order: "did anything change?"."""
    order = {"meta": "key", "slots": "id", "credentials": "id", "versions": "credential_id, version",
             "audit": "seq"}
    with raw_db(path) as conn:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
                for table, key in order.items()}


def file_bytes(path: Path | str) -> dict[str, bytes]:
    """The raw bytes of the vault file and its SQLite companions, if present."""
    out = {}
    for suffix in ("", "-wal", "-shm"):
        name = os.fspath(path) + suffix
        if os.path.exists(name):
            with open(name, "rb") as handle:
                out[suffix or "db"] = handle.read()
    return out


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    return private_dir(tmp_path) / "vault.db"


@pytest.fixture
def made(vault_path: Path, clock: Clock) -> Iterator[Made]:
    """A fresh, unlocked vault with passphrase, env and recovery slots."""
    result = create_vault(vault_path, clock)
    try:
        yield result
    finally:
        result.vault.close()


@pytest.fixture
def vault(made: Made) -> Vault:
    return made.vault


@pytest.fixture
def creds(made: Made) -> Credentials:
    return Credentials(made.vault)


KIT = SimpleNamespace(
    PASSPHRASE=PASSPHRASE,
    OTHER_PASSPHRASE=OTHER_PASSPHRASE,
    ENV_KEY=ENV_KEY,
    WRONG_ENV_KEY=WRONG_ENV_KEY,
    START=START,
    DAY=DAY,
    TEST_ACTOR=TEST_ACTOR,
    Clock=Clock,
    Made=Made,
    fast_kdf=fast_kdf,
    private_dir=private_dir,
    create_vault=create_vault,
    open_unlocked=open_unlocked,
    raw_db=raw_db,
    dump_tables=dump_tables,
    file_bytes=file_bytes,
)


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """Constants and helpers of the core tests (see the module docstring)."""
    return KIT
