"""What each module pulls in when imported, each in a fresh interpreter.

- No module of ``aegis_tui.core`` or ``aegis_tui.cli`` imports Textual or Rich: the
  core is a library, and the CLI is called in loops by agents.
- ``keyring`` (~90 ms) is imported only when a keyring slot is actually used: a ``get``
  through ``AEGIS_VAULT_KEY`` never loads it.
- ``get NAME`` through a running broker (what agents call in loops, and what must cost
  no more than ``pass show``) loads three C modules beyond what the interpreter loads
  to start, and the two modules of its own path: no ``socket``, ``json``, ``re``,
  ``enum``, ``typing`` or project error classes (``cli/fast_get.py`` says why).
- The import contracts in ``pyproject.toml`` hold (``lint-imports``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.scripted_broker import VALUE, ScriptedBroker, broker_socket_for

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "aegis_tui"
UI_TOOLKITS = ("textual", "rich")


def modules_under(*folders: str) -> list[str]:
    """Every module in these sub-packages, found on disk (collection imports nothing)."""
    found = []
    for folder in folders:
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found.append(".".join(parts))
    return found


def loaded_after(code: str, watch: tuple[str, ...], env: dict[str, str] | None = None) -> list[str]:
    """Run ``code`` in a fresh interpreter; which of ``watch`` ended up in sys.modules."""
    probe = code + (
        "\nimport sys as _sys\n"
        f"_sys.stderr.write('\\nLOADED=' + ','.join(m for m in {watch!r} if m in _sys.modules) + '\\n')\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    marker = [line for line in proc.stderr.splitlines() if line.startswith("LOADED=")]
    assert marker, proc.stderr[-2000:]
    return [name for name in marker[-1].removeprefix("LOADED=").split(",") if name]


CORE_AND_CLI = modules_under("core", "cli")


def test_the_module_walk_finds_the_core_and_cli_modules():
    for expected in ("aegis_tui.core.vault", "aegis_tui.core.store.sqlite", "aegis_tui.cli",
                     "aegis_tui.cli.commands.credentials", "aegis_tui.cli.unlock"):
        assert expected in CORE_AND_CLI


@pytest.mark.parametrize("module", CORE_AND_CLI)
def test_importing_the_module_loads_no_ui_toolkit(module):
    assert loaded_after(f"import {module}", UI_TOOLKITS) == []


def test_the_probe_does_see_a_ui_toolkit_when_one_is_imported():
    assert loaded_after("import rich.text", UI_TOOLKITS) == ["rich"]


@pytest.fixture
def get_through_env_key(env_vault):  # type: ignore[no-untyped-def]
    result = env_vault("add", "api", input="value")
    assert result.returncode == 0, result.err
    return env_vault


RUN_GET = (
    "from aegis_tui.cli import main\n"
    "code = main(['get', 'api'])\n"
    "assert code == 0, code\n"
)


def test_a_get_through_the_cli_entry_point_does_not_import_keyring_or_a_ui_toolkit(get_through_env_key):
    loaded = loaded_after(RUN_GET, ("keyring", *UI_TOOLKITS), env=get_through_env_key.env)
    assert loaded == []


@pytest.mark.keyring
def test_a_get_through_a_keyring_slot_does_import_keyring(cli, secret_service):
    created = cli("init", "--no-passphrase", "--keyring", env=secret_service)
    assert created.returncode == 0, created.err
    assert cli("add", "api", input="value", env=secret_service).returncode == 0
    assert loaded_after(RUN_GET, ("keyring",), env={**cli.env, **secret_service}) == ["keyring"]


def test_import_linter_contracts_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    if not lint_imports.exists():
        pytest.skip(f"import-linter is not installed ({lint_imports} is missing)")
    proc = subprocess.run([str(lint_imports)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


@pytest.fixture
def broker_serving(get_through_env_key):  # type: ignore[no-untyped-def]
    """A real ``aegis-vault serve`` over the vault, with a standing grant for ``api``;
    yields the environment of an agent that has no vault key."""
    runtime = Path(tempfile.mkdtemp(prefix="aeg-", dir="/tmp"))  # socket paths are limited to 108 bytes
    cli = get_through_env_key
    granted = cli("grants", "add", "api", "--reveal")
    assert granted.returncode == 0, granted.err
    env = {**cli.env, "XDG_RUNTIME_DIR": str(runtime)}
    broker = subprocess.Popen([sys.executable, "-m", "aegis_tui", "serve"], env=env, stderr=subprocess.PIPE)
    try:
        assert broker.stderr is not None
        assert b"broker serving" in broker.stderr.readline()
        yield {key: value for key, value in env.items() if key != "AEGIS_VAULT_KEY"}
    finally:
        broker.terminate()
        broker.wait(timeout=30)
        shutil.rmtree(runtime, ignore_errors=True)


# What the interpreter has loaded before the first line of ``main`` is not ours to count.
FAST_GET_MAY_LOAD = {"aegis_tui", "aegis_tui.cli", "aegis_tui.cli.fast_get", "_socket", "_json", "binascii"}
HEAVY_FOR_GET = ("aegis_tui.core.vault", "cryptography", "argparse", "typing", "sqlite3", "keyring", "socket", "json",
                 "re", "enum", "base64", "struct", "importlib.metadata", "aegis_tui.core.errors",
                 "aegis_tui.core.access", "aegis_tui.core.broker.client", *UI_TOOLKITS)


def test_a_get_through_a_broker_imports_neither_the_vault_nor_cryptography_nor_argparse(broker_serving):
    """The call agents make in loops: one socket round trip, nothing else."""
    assert loaded_after(RUN_GET, HEAVY_FOR_GET, env=broker_serving) == []


@pytest.fixture
def scripted_broker(get_through_env_key):  # type: ignore[no-untyped-def]
    """A stand-in broker (tests/support/scripted_broker.py) on the socket the vault's
    broker would use; yields the environment of a caller without the vault key."""
    env = get_through_env_key.env
    runtime, path = broker_socket_for(env["AEGIS_VAULT_HOME"])
    broker = ScriptedBroker(path)
    try:
        yield {**{key: value for key, value in env.items() if key != "AEGIS_VAULT_KEY"}, "XDG_RUNTIME_DIR": runtime}
    finally:
        broker.close()
        shutil.rmtree(runtime, ignore_errors=True)


def test_a_get_through_a_broker_loads_nothing_beyond_three_c_modules_and_its_own_two(scripted_broker):
    """Everything the call adds to ``sys.modules`` after start-up, by name; a new import
    on this path must be worth its cost (see docs/benchmarks.md) and be added here."""
    code = ("import sys\nbefore = set(sys.modules)\nfrom aegis_tui.cli import main\n"
            "assert main(['get', 'api']) == 0\n"
            "sys.stderr.write('\\nNEW=' + ','.join(sorted(set(sys.modules) - before)) + '\\n')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env=scripted_broker, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == VALUE.decode()
    marker = [line for line in proc.stderr.splitlines() if line.startswith("NEW=")]
    loaded = set(marker[-1].removeprefix("NEW=").split(",")) - {""}
    assert loaded <= FAST_GET_MAY_LOAD, sorted(loaded - FAST_GET_MAY_LOAD)
    assert "aegis_tui.cli.fast_get" in loaded  # it did take the fast path
    assert loaded_after("from aegis_tui.cli import main\nassert main(['get', 'api']) == 0\n", HEAVY_FOR_GET,
                        env=scripted_broker) == []


def test_the_probe_does_see_the_heavy_modules_of_the_long_way(get_through_env_key):
    """The same check on a ``get`` that unlocks the vault itself: the list is not vacuous."""
    loaded = loaded_after(RUN_GET, HEAVY_FOR_GET, env=get_through_env_key.env)
    assert {"aegis_tui.core.vault", "cryptography", "argparse", "sqlite3"} <= set(loaded)


def imported_by(args: list[str], env: dict[str, str]) -> set[str]:
    """Every module ``python -m aegis_tui ARGS`` imports, from ``-X importtime``: a run
    must really be ``aegis-vault run`` (the broker injects only into one, checking its
    command line in /proc), so no probe code can be slipped in with ``-c``."""
    proc = subprocess.run([sys.executable, "-Ximporttime", "-m", "aegis_tui", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


def test_run_through_a_broker_imports_neither_the_vault_nor_cryptography(broker_serving):
    heavy = {"aegis_tui.core.vault", "cryptography", "sqlite3", "asyncio", "keyring", *UI_TOOLKITS}
    loaded = imported_by(["run", "--need", "api", "--", "true"], broker_serving)
    assert "aegis_tui.core.broker.client" in loaded  # it did go through the broker
    assert loaded & heavy == set()


def test_run_through_a_broker_skips_the_stdlib_modules_that_cost_it_milliseconds(broker_serving):
    """``run`` wraps every command an agent runs: argparse (with re and gettext), typing,
    json, base64 and signal's enum wrappers cost it ~10 ms together (docs/benchmarks.md).
    ``-m`` itself brings contextlib and collections in, so those are not checked here."""
    costly = {"argparse", "typing", "re", "json", "enum", "base64", "signal", "gettext"}
    loaded = imported_by(["run", "--need", "api", "--", "true"], broker_serving)
    assert "aegis_tui.core.run.child" in loaded  # it did start the command
    assert loaded & costly == set()
