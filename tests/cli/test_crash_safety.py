"""Crash safety of the store: ``kill -9`` mid-write loses nothing that was reported
done, and concurrent writers lose nothing at all.

Writers are real subprocesses using the core API (``Vault.open``,
``unlock_with_env_key``, ``Credentials.add``/``rotate``); each prints ``ok NAME`` (or
``rot NAME VERSION``) and flushes only after the call returned, i.e. after the
transaction committed. Values encode their own name and version, so any value can be
checked against the credential's current version.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from aegis_tui.core.credentials import Credentials
from aegis_tui.core.vault import Vault

KILLS = 200
NAMES_PER_WRITER = 20  # then it only rotates, so the vault grows by at most 20 names a kill
MAX_DELAY = 0.150

WRITER = r"""
import os, sys
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault

path, tag, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
vault = Vault.open(path)
vault.unlock_with_env_key(os.environ["AEGIS_VAULT_KEY"])
credentials = Credentials(vault)
out = sys.stdout
out.write("ready\n"); out.flush()
names = []
step = 0
while True:
    step += 1
    if len(names) < limit:
        name = f"{tag}-{len(names)}"
        credentials.add(name, Secret(f"value:{name}:1"))
        names.append(name)
        out.write(f"ok {name}\n"); out.flush()
    if names and (step % 3 == 0 or len(names) >= limit):
        target = names[(step * 7) % len(names)]
        version = credentials.find(target).current_version + 1
        credentials.rotate(target, Secret(f"value:{target}:{version}"), overlap_seconds=0)
        out.write(f"rot {target} {version}\n"); out.flush()
"""

CONCURRENT_WRITER = r"""
import os, sys
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault

path, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
vault = Vault.open(path)
vault.unlock_with_env_key(os.environ["AEGIS_VAULT_KEY"])
credentials = Credentials(vault)
print("ready", flush=True)
assert sys.stdin.readline() == "go\n"
for index in range(count):
    name = f"{tag}-{index}"
    credentials.add(name, Secret(f"value:{name}:1"))
vault.close()
print("done", flush=True)
"""


class _Rollback(Exception):
    """Raised inside a transaction so the checker's own reads leave no audit entries."""


def expected_value(name: str, version: int) -> bytes:
    return f"value:{name}:{version}".encode()


def check_vault(path: str, key: str, reported: dict[str, int], value_names: set[str], context: str) -> int:
    """Open and unlock; every reported name present at (at least) its reported version,
    the value of each name in ``value_names`` right for its version, audit chain intact.
    Returns the number of credentials."""
    vault = Vault.open(path)
    try:
        vault.unlock_with_env_key(key)
        credentials = Credentials(vault)
        present = {c.name: c for c in credentials.list()}
        missing = sorted(set(reported) - set(present))
        assert not missing, f"{context}: reported but lost: {missing[:10]}"
        for name, version in reported.items():
            assert present[name].current_version >= version, f"{context}: {name} lost rotation to v{version}"
        try:
            with vault.store.transaction():
                for name in sorted(value_names & set(present)):
                    value = credentials.reveal(name).reveal()
                    assert value == expected_value(name, present[name].current_version), f"{context}: {name}"
                raise _Rollback
        except _Rollback:
            pass
        report = vault.audit.verify()
        assert report.ok, f"{context}: audit: {report.problems}"
        return len(present)
    finally:
        vault.close()


@pytest.mark.slow
def test_two_hundred_kill_nines_mid_write_lose_nothing_that_was_reported_committed(env_vault, home):
    seed = int(os.environ.get("AEGIS_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"crash-safety seed: {seed} (rerun with AEGIS_CRASH_SEED={seed})")
    rng = random.Random(seed)
    key = env_vault.env["AEGIS_VAULT_KEY"]
    path = str(home / "vault.db")
    reported: dict[str, int] = {}  # name -> highest version reported committed
    kills_mid_write = 0
    for round_number in range(KILLS):
        tag = f"r{round_number}"
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, path, tag, str(NAMES_PER_WRITER)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_vault.env, start_new_session=True,
        )
        assert writer.stdout is not None and writer.stderr is not None
        first = writer.stdout.readline()
        if first != b"ready\n":
            writer.kill()
            writer.wait()
            pytest.fail(f"seed {seed} round {round_number}: writer did not start: {writer.stderr.read()[-2000:]!r}")
        time.sleep(rng.uniform(0, MAX_DELAY))
        still_running = writer.poll() is None
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        rest = writer.stdout.read()
        errors = writer.stderr.read()
        writer.stdout.close()
        writer.stderr.close()
        assert still_running, f"seed {seed} round {round_number}: writer exited early: {errors[-2000:]!r}"
        assert writer.returncode == -signal.SIGKILL
        kills_mid_write += 1
        fresh: set[str] = set()
        for line in rest.decode().split("\n")[:-1]:  # a last line without "\n" was cut by the kill
            parts = line.split()
            if parts[0] == "ok":
                reported.setdefault(parts[1], 1)
                fresh.add(parts[1])
            elif parts[0] == "rot":
                reported[parts[1]] = max(reported.get(parts[1], 1), int(parts[2]))
                fresh.add(parts[1])
        # Values: everything this round touched (reported or not), plus a sample of the rest.
        this_round = {f"{tag}-{index}" for index in range(NAMES_PER_WRITER)}
        sample = set(rng.sample(sorted(reported), min(25, len(reported))))
        check_vault(path, key, reported, fresh | this_round | sample, f"seed {seed} round {round_number}")
    assert kills_mid_write == KILLS
    assert len(reported) > KILLS  # the loop really wrote: well over one name a round on average
    total = check_vault(path, key, reported, set(reported), f"seed {seed} final")
    assert total >= len(reported)
    rotations = sum(version - 1 for version in reported.values())
    print(f"{KILLS} kills: {len(reported)} adds and {rotations} rotations reported, {total} credentials")


def test_four_concurrent_writers_lose_nothing(env_vault, home):
    key = env_vault.env["AEGIS_VAULT_KEY"]
    path = str(home / "vault.db")
    writers = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT_WRITER, path, f"p{number}", "50"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env_vault.env, start_new_session=True)
        for number in range(4)
    ]
    try:
        for writer in writers:
            assert writer.stdout is not None
            assert writer.stdout.readline() == b"ready\n", writer.stderr.read() if writer.stderr else b""
        for writer in writers:  # all four are open and unlocked: release them together
            assert writer.stdin is not None
            writer.stdin.write(b"go\n")
            writer.stdin.flush()
        results = [writer.communicate(timeout=120) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    for writer, (out, err) in zip(writers, results):
        assert writer.returncode == 0, err.decode()[-2000:]
        assert out == b"done\n"
    names = {f"p{number}-{index}": 1 for number in range(4) for index in range(50)}
    assert check_vault(path, key, names, set(names), "concurrent") == 200
    vault = Vault.open(path)
    try:
        vault.unlock_with_env_key(key)
        operations = [entry.operation for entry in vault.audit.entries()]
    finally:
        vault.close()
    assert operations.count("add") == 200
    assert operations.count("init") == 1
