"""Shared fixtures: real files, real subprocesses, a real Secret Service. No mocks.

- ``home``: a private temp folder used as ``$AEGIS_VAULT_HOME`` (and ``$HOME``).
- ``cli``: runs ``python -m aegis_tui`` as a real subprocess in its own session, so it
  has no controlling terminal: nothing can hang on a prompt, and "no terminal" paths
  are what the tests see.
- ``secret_service``: a private D-Bus session bus with an unlocked gnome-keyring, for
  tests of the keyring slot (skipped with a reason when gnome-keyring is missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import Outcome

FAST_KDF = {"AEGIS_VAULT_INSECURE_FAST_KDF": "1"}
TEST_KEY = "5f" * 32  # a fixed AEGIS_VAULT_KEY for tests: 64 hex characters


Result = Outcome  # a finished ``aegis-vault`` process: returncode, stdout, stderr, .out, .err


class Cli:
    """``aegis-vault`` as a subprocess with a controlled environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(
        self,
        *args: str,
        input: bytes | str | None = None,
        env: dict[str, str] | None = None,
        pass_fds: tuple[int, ...] = (),
        stdin: int | None = None,
        timeout: float = 60,
    ) -> Result:
        merged = {**self.env, **(env or {})}
        merged = {key: value for key, value in merged.items() if value is not None}
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run(
            [sys.executable, "-m", "aegis_tui", *args],
            input=data,
            stdin=stdin if data is None else None,
            capture_output=True,
            env=merged,
            pass_fds=pass_fds,
            start_new_session=True,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "vault-home"
    folder.mkdir(mode=0o700)
    return folder


def base_env(home: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "DBUS_SESSION_BUS_ADDRESS", "TMPDIR")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update({"AEGIS_VAULT_HOME": str(home), "HOME": str(home.parent), "PYTHONDONTWRITEBYTECODE": "1"})
    env.update(FAST_KDF)
    return env


@pytest.fixture
def cli(home: Path) -> Cli:
    return Cli(base_env(home))


@pytest.fixture
def env_vault(cli: Cli) -> Cli:
    """An initialised vault that unlocks with ``AEGIS_VAULT_KEY`` (no passphrase)."""
    cli.env["AEGIS_VAULT_KEY"] = TEST_KEY
    result = cli("init", "--no-passphrase")
    assert result.returncode == 0, result.err
    return cli


@pytest.fixture(scope="session")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private session bus with an unlocked gnome-keyring; yields the environment to use."""
    if not (shutil.which("dbus-daemon") and shutil.which("gnome-keyring-daemon")):
        pytest.skip("gnome-keyring and dbus-daemon are needed (apt-get install gnome-keyring dbus)")
    home = tmp_path_factory.mktemp("keyring-home")
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(home), "XDG_DATA_HOME": str(home / "data")}
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE, env=env, text=True,
    )
    assert bus.stdout is not None
    address = bus.stdout.readline().strip()
    env["DBUS_SESSION_BUS_ADDRESS"] = address
    keyring_daemon = subprocess.run(
        ["gnome-keyring-daemon", "--unlock", "--components=secrets"],
        input="test-login-password", capture_output=True, text=True, env=env, timeout=30,
    )
    for line in keyring_daemon.stdout.splitlines():
        key, _, value = line.partition("=")
        if key and value:
            env[key] = value
    time.sleep(0.2)
    try:
        yield {"DBUS_SESSION_BUS_ADDRESS": address, "HOME": str(home), "XDG_RUNTIME_DIR": str(home)}
    finally:
        bus.terminate()
        bus.wait(timeout=10)
