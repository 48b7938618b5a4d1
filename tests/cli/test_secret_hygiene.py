"""Canary tests: a secret value goes in on stdin and comes out of ``get``, nowhere else.

Not in any process's argv or environment, not on any stderr, not on the stdout of any
command but ``get`` (``audit export --jsonl``, ``audit tail``, ``list --json``,
``show --json``, ``history --json`` and ``status --json`` included), not in the raw
vault file (db, wal, shm), and not in a ``--debug`` traceback raised after the value
was read.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
import sys

import pytest

FIRST = "CANARY1-" + secrets.token_hex(12)
SECOND = "CANARY2-" + secrets.token_hex(12)
LATE = "CANARY3-" + secrets.token_hex(12) + "~"  # only fed to commands that fail after reading it ("~": never base32)
ALL = (FIRST, SECOND, LATE)
HOLD_OPEN = (
    "import sqlite3, sys\n"
    "conn = sqlite3.connect(sys.argv[1])\n"
    "conn.execute('SELECT count(*) FROM meta').fetchone()\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)


class Recorder:
    """The ``cli`` fixture, keeping every argv, environment and result it produced."""

    def __init__(self, cli) -> None:  # type: ignore[no-untyped-def]
        self.cli = cli
        self.env = cli.env
        self.calls: list[tuple[list[str], dict[str, str], object]] = []

    def __call__(self, *args: str, **kwargs: object):  # type: ignore[no-untyped-def]
        result = self.cli(*args, **kwargs)
        env = {**self.cli.env, **(kwargs.get("env") or {})}  # type: ignore[dict-item]
        self.calls.append(([sys.executable, "-m", "aegis_tui", *args], env, result))
        return result


def leaks(data: bytes, canaries: tuple[str, ...] = ALL) -> list[str]:
    """Which canaries appear in ``data``, raw, hex or base64."""
    found = []
    for canary in canaries:
        raw = canary.encode()
        if raw in data or raw.hex().encode() in data or base64.b64encode(raw)[:24] in data:
            found.append(canary)
    return found


@pytest.fixture
def session(env_vault, home, snapshot, request):  # type: ignore[no-untyped-def]
    """Every command of a credential's life, run once, with the canaries as its values."""
    run = Recorder(env_vault)

    def ok(*args: str, **kwargs: object):  # type: ignore[no-untyped-def]
        result = run(*args, **kwargs)
        assert result.returncode == 0, (args, result.err)
        return result

    # A reader in another process keeps the WAL alive: otherwise the last CLI process to
    # close the vault checkpoints it away and the "-wal" check below would look at nothing.
    # (Not in this process: reading the files for the snapshots would drop its locks.)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_OPEN, str(home / "vault.db")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    request.addfinalizer(lambda: holder.communicate(timeout=30))
    ok("add", "svc", "--context", "acme/prod", "--service", "Acme", "--tag", "ci", input=FIRST)
    after_add = snapshot()
    assert (home / "vault.db-wal").stat().st_size > 0
    assert ok("get", "svc").stdout == FIRST.encode()
    ok("rotate", "svc", "--overlap", "1h", input=SECOND)
    assert ok("get", "aegis://acme/prod/svc").stdout == SECOND.encode()
    assert ok("get", "svc", "--version", "1").stdout == FIRST.encode()
    ok("add", "other", input="plain-other-value")
    for args in (("list",), ("list", "--json"), ("show", "svc"), ("show", "svc", "--json"), ("history", "svc"),
                 ("history", "svc", "--json"), ("status",), ("status", "--json"), ("audit", "tail", "-n", "100"),
                 ("audit", "export", "--jsonl"), ("audit", "verify"), ("slots", "list")):
        ok(*args)
    ok("revoke", "svc", "--reason", "hygiene test")
    refused = run("get", "svc")
    assert refused.returncode == 8
    return run, after_add, snapshot()


def test_the_canary_is_never_in_the_argv_or_environment_of_a_spawned_process(session):
    run, _, _ = session
    assert len(run.calls) > 15
    for argv, env, _ in run.calls:
        assert not any(canary in arg for arg in argv for canary in ALL), argv
        assert not any(canary in value for value in env.values() for canary in ALL)


def test_the_canary_is_never_on_stderr(session):
    run, _, _ = session
    for argv, _, result in run.calls:
        assert leaks(result.stderr) == [], (argv[3:], result.err)


def test_the_canary_is_on_stdout_only_of_get(session):
    run, _, _ = session
    checked = set()
    for argv, _, result in run.calls:
        command = argv[3]
        if command == "get":
            continue
        checked.add(" ".join(argv[3:5]))
        assert leaks(result.stdout) == [], (argv[3:], result.out[:200])
    for must in ("audit export", "audit tail", "list --json", "show svc", "history svc", "status --json"):
        assert must in checked, must


def test_the_canary_gets_are_exact_so_the_search_above_can_find_it(session):
    run, _, _ = session
    outputs = [result.stdout for argv, _, result in run.calls if argv[3] == "get" and result.returncode == 0]
    assert FIRST.encode() in outputs and SECOND.encode() in outputs


def test_the_canary_is_not_in_the_raw_vault_file_wal_or_shm(session, home):
    _, after_add, at_end = session
    assert (home / "vault.db-wal").stat().st_size > 0 and (home / "vault.db-shm").exists()
    assert leaks(after_add) == [] and leaks(at_end) == []
    for path in home.iterdir():
        assert leaks(path.read_bytes()) == [], path.name


@pytest.mark.parametrize(("argv", "exception"), [
    (("--debug", "rotate", "svc"), "RefusedError"),          # revoked: refused after the new value was read
    (("--debug", "add", "svc"), "ConflictError"),             # duplicate: refused after the value was read
    (("--debug", "add", "seed", "--kind", "totp"), "UsageError"),  # not a TOTP seed: the value itself is judged
    (("--debug", "get", "svc"), "RefusedError"),              # revoked: refused where values are handed out
])
def test_a_debug_traceback_after_the_value_was_read_does_not_contain_it(session, argv, exception):
    run, _, _ = session
    result = run(*argv, input=LATE)
    assert result.returncode != 0
    assert "Traceback" in result.err and exception in result.err, result.err[-500:]
    assert leaks(result.stderr) == [] and leaks(result.stdout) == []


def test_values_read_through_the_passphrase_fd_path_do_not_leak_either(pass_vault):
    added = pass_vault.run("add", "fd", input=FIRST)
    assert added.returncode == 0, added.err
    outputs = [pass_vault.run(*args) for args in (("list", "--json"), ("show", "fd", "--json"),
                                                  ("audit", "export", "--jsonl"), ("status", "--json"))]
    for result in [added, *outputs]:
        assert leaks(result.stdout + result.stderr) == []
    assert pass_vault.run("get", "fd").stdout == FIRST.encode()
