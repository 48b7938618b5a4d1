"""Shared helpers for the aegis-vault benchmarks.

Everything here is plain stdlib plus the project's own core API. Each benchmark script
imports this module, builds its throwaway vaults under a private temporary folder and
deletes them on exit. Nothing touches the user's real vault: every child process gets
its own ``AEGIS_VAULT_HOME``.

Vaults are created through the core API (``Vault.create``), exactly what
``aegis-vault init`` does underneath, so the benchmarks do not depend on the ``init``
command's front end.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
VENV_PYTHON = os.path.join(VENV_BIN, "python")
AEGIS = os.path.join(VENV_BIN, "aegis-vault")

if ROOT not in sys.path:  # running as `python bench/x.py` puts bench/ first, not the root
    sys.path.insert(0, ROOT)

from aegis_tui.core.credentials import Credentials  # noqa: E402
from aegis_tui.core.crypto import KdfParams  # noqa: E402
from aegis_tui.core.secret import Secret  # noqa: E402
from aegis_tui.core.slots import new_env_key  # noqa: E402
from aegis_tui.core.vault import Vault  # noqa: E402

VAULT_FILENAME = "vault.db"


# -- temp folders and vaults ----------------------------------------------------------------
@contextlib.contextmanager
def temp_dir(prefix: str = "aegis-bench-") -> Iterator[str]:
    """A private (0700) temporary folder, removed afterwards."""
    base = os.environ.get("AEGIS_BENCH_TMP") or None
    path = tempfile.mkdtemp(prefix=prefix, dir=base)
    os.chmod(path, 0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def vault_file(home: str) -> str:
    return os.path.join(home, VAULT_FILENAME)


class BenchVault(NamedTuple):
    home: str  # the AEGIS_VAULT_HOME folder
    path: str  # the vault file
    env_key: str | None
    passphrase: str | None
    recovery_code: str


def create_vault(
    home: str,
    *,
    env_key: str | None = None,
    passphrase: str | None = None,
    kdf: KdfParams | None = None,
) -> tuple[Vault, BenchVault]:
    """A new, unlocked vault in ``home`` (0700) through ``Vault.create``.

    ``env_key=None`` and no passphrase means: make a fresh env key (env-slot-only vault,
    the shape of ``AEGIS_VAULT_KEY=... aegis-vault init --no-passphrase``).
    """
    os.makedirs(home, mode=0o700, exist_ok=True)
    os.chmod(home, 0o700)
    if env_key is None and passphrase is None:
        env_key = new_env_key()
    path = vault_file(home)
    vault, code = Vault.create(
        path,
        passphrase=Secret(passphrase) if passphrase is not None else None,
        kdf=kdf,
        env_key=env_key,
    )
    return vault, BenchVault(home, path, env_key, passphrase, code)


def open_with_env(info: BenchVault) -> Vault:
    assert info.env_key is not None
    vault = Vault.open(info.path)
    vault.unlock_with_env_key(info.env_key)
    return vault


def child_env(info: BenchVault | None = None, **extra: str) -> dict[str, str]:
    """The environment for a child ``aegis-vault`` process using ``info``'s vault."""
    env = dict(os.environ)
    env.pop("AEGIS_SESSION", None)
    if info is not None:
        env["AEGIS_VAULT_HOME"] = info.home
        if info.env_key is not None:
            env["AEGIS_VAULT_KEY"] = info.env_key
        else:
            env.pop("AEGIS_VAULT_KEY", None)
    env.update(extra)
    return env


def credential_name(index: int, prefix: str = "cred") -> str:
    return f"{prefix}-{index:07d}"


def bulk_add(
    vault: Vault,
    count: int,
    *,
    start: int = 0,
    prefix: str = "cred",
    value_bytes: int = 40,
    batch: int = 0,
    progress: Callable[[int], None] | None = None,
) -> float:
    """Add ``count`` credentials through ``Credentials.add``; returns seconds taken.

    All adds run inside ONE ``vault.store.transaction()`` (``batch=0``) or in
    transactions of ``batch`` adds each: the nested ``Credentials.add`` transactions
    join the outer one, so there is one commit (one fsync) per batch instead of one
    per credential. Every add still writes its sealed metadata, sealed value and its
    signed audit entry, exactly as in real use.
    """
    credentials = Credentials(vault)
    contexts = ("", "prod", "prod/api", "staging", "dev/local")
    kinds_services = (("api_key", "openai"), ("password", "postgres"), ("access_token", "github"),
                      ("secret", ""), ("connection_string", "redis"))
    from aegis_tui.core.models import Kind

    started = time.perf_counter()
    step = batch if batch > 0 else count
    done = 0
    while done < count:
        chunk = min(step, count - done)
        with vault.store.transaction():
            for offset in range(chunk):
                i = start + done + offset
                kind, service = kinds_services[i % len(kinds_services)]
                credentials.add(
                    credential_name(i, prefix),
                    Secret(os.urandom(value_bytes // 2).hex()),
                    kind=Kind(kind),
                    service=service,
                    context=contexts[i % len(contexts)],
                    tags=["bench"] if i % 3 == 0 else [],
                    rotation_days=90 if i % 4 == 0 else None,
                )
        done += chunk
        if progress is not None:
            progress(done)
    return time.perf_counter() - started


# -- child processes: wall time and peak memory ---------------------------------------------
class ChildRun(NamedTuple):
    seconds: float
    returncode: int
    maxrss_kib: int  # peak resident set size of the child (Linux ru_maxrss is in KiB)
    cpu_seconds: float  # user + system CPU time of the child: less sensitive to a busy machine


def run_child(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    stdout: Any = subprocess.DEVNULL,
    stderr: Any = subprocess.DEVNULL,
    check: bool = True,
) -> ChildRun:
    """Run one process; wall time from spawn to reap, peak RSS and CPU time from ``os.wait4``."""
    stdin_pipe = subprocess.PIPE if stdin is not None else subprocess.DEVNULL
    started = time.perf_counter()
    proc = subprocess.Popen(list(argv), env=env, stdin=stdin_pipe, stdout=stdout, stderr=stderr)
    if stdin is not None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(stdin)
        except BrokenPipeError:
            pass
        proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not reap again
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {proc.returncode}")
    return ChildRun(seconds, proc.returncode, usage.ru_maxrss, usage.ru_utime + usage.ru_stime)


def run_repeated(argv: Sequence[str], runs: int, **kwargs: Any) -> list[ChildRun]:
    return [run_child(argv, **kwargs) for _ in range(runs)]


def compile_package() -> str:
    """Byte-compile aegis_tui so cold processes load .pyc files.

    This machine sets PYTHONDONTWRITEBYTECODE=1, so with an editable checkout every
    process would otherwise recompile the package from source on each call.
    """
    subprocess.run([VENV_PYTHON, "-m", "compileall", "-q", "aegis_tui"], cwd=ROOT, check=True)
    note = "ran `python -m compileall -q aegis_tui` first"
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        note += (" (PYTHONDONTWRITEBYTECODE=1 is set here: without it an editable checkout would "
                 "recompile aegis_tui on every call)")
    return note


def hyperfine(commands: dict[str, str], env: dict[str, str], runs: int, warmup: int,
              export: str) -> dict[str, dict[str, Any]]:
    """One ``hyperfine -N`` run of ``commands`` (name -> command line), printed as the
    command to reproduce it; results by name (hyperfine's JSON export)."""
    argv = ["hyperfine", "-N", "--warmup", str(warmup), "--runs", str(runs), "--export-json", export,
            *commands.values()]
    print("command: " + " ".join(f"'{part}'" if " " in part else part for part in argv))
    subprocess.run(argv, env=env, check=True)
    with open(export, encoding="utf-8") as data:
        return dict(zip(commands, json.load(data)["results"]))


def interleaved(commands: dict[str, Sequence[str]], env: dict[str, str], rounds: int,
                warmup: int = 3, envs: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, Any]]:
    """Each round runs every command once, in a new random order; per command: median
    and min wall time, median CPU (user + sys) in seconds, like ``hyperfine``'s export.

    hyperfine runs all runs of one command, then the next: a burst of load from
    something else on a shared machine lands on one command and skews the ratios.
    Interleaved rounds spread such bursts over every command alike. ``envs`` gives some
    commands an environment of their own."""
    import random

    envs = envs or {}
    for _ in range(warmup):
        for name, argv in commands.items():
            run_child(argv, env=envs.get(name, env))
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    shuffle = random.Random(11)
    for _ in range(rounds):
        order = list(commands.items())
        shuffle.shuffle(order)
        for name, argv in order:
            result = run_child(argv, env=envs.get(name, env))
            walls[name].append(result.seconds)
            cpus[name].append(result.cpu_seconds)
    return {name: {"command": " ".join(commands[name]), "median": median(walls[name]), "min": min(walls[name]),
                   "cpu_median": median(cpus[name]), "runs": rounds} for name in commands}


def interleaved_table(results: dict[str, dict[str, Any]]) -> None:
    print()
    print("| command (interleaved rounds) | median | min | CPU user+sys (median) |")
    print("|---|---|---|---|")
    for result in results.values():
        print(f"| `{result['command']}` | {result['median'] * 1000:.1f} ms | {result['min'] * 1000:.1f} ms | "
              f"{result['cpu_median'] * 1000:.1f} ms |")
    print()


def hyperfine_table(results: dict[str, dict[str, Any]]) -> None:
    """The Markdown table every hyperfine-based benchmark prints."""
    print()
    print("| command | median | mean ± σ | min | CPU user+sys (mean) |")
    print("|---|---|---|---|---|")
    for result in results.values():
        print(f"| `{result['command']}` | {result['median'] * 1000:.1f} ms | "
              f"{result['mean'] * 1000:.1f} ± {result['stddev'] * 1000:.1f} ms | {result['min'] * 1000:.1f} ms | "
              f"{(result['user'] + result['system']) * 1000:.1f} ms |")
    print()


# -- statistics and formatting --------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("inf")


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def machine_facts() -> dict[str, str]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    sqlite_version = subprocess.run(
        [VENV_PYTHON, "-c", "import sqlite3; print(sqlite3.sqlite_version)"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()
    commit = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h"], capture_output=True, text=True,
                            check=False).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "--", "aegis_tui"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit + (" + uncommitted changes in aegis_tui" if dirty else ""),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite_version,
        "kernel": platform.release(),
        "loadavg": load,
    }


def print_facts() -> None:
    facts = machine_facts()
    print("machine: " + ", ".join(f"{key}={value}" for key, value in facts.items()))


def write_json(path: str | None, data: dict[str, Any]) -> None:
    """Results for run_all.py (``--json FILE``)."""
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)

