"""Attack: an agent started with ``session exec`` leaves its session's process tree, and
with it the session, by double-forking, by ``setsid``, or by going deeper than the
broker looks; and whatever it left running outlives the session.

Before issue 11: an orphan (double fork, ``setsid -f``) was adopted by pid 1, outside the
tree the session is bound to, so with ``AEGIS_SESSION`` unset it was "the human's shell"
and listed every context; the broker walked only 12 ancestors, so a process 30 levels
down was outside too; and the orphans kept running after the agent, and the session,
had ended.

Now ``session exec`` is a child subreaper: orphans are adopted by it and stay in the
tree; ancestry is walked to the root; and when the agent exits, what is left of its tree
gets SIGTERM, then SIGKILL, before the session ends. Everything runs for real: a headless
broker (``tests/security/conftest.py``), ``session exec`` with no vault key (so it
works through the broker), shell scripts as the agent, ``aegis-vault`` inside them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from aegis_tui.core.sandbox.bwrap import find_bwrap
from tests.support.attacker import PROD_DB
from tests.support.broker import wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreapers and /proc are Linux's")

IN_CONTEXT = {"dev-db", "dev-other"}  # acme/dev, the session's context
WAIT = 60.0

# Run from its own folder by every scenario: acts as an agent's stray process would.
# $1 names it; it waits until it is an orphan (its first parent gone), says who adopted
# it, then lists and asks for a credential outside the session's context, with
# AEGIS_SESSION unset: only the process tree can still tie it to the session.
STRAY = r"""
name=$1
first=$(cut -d' ' -f4 /proc/$$/stat)
echo $$ > "$name.pid"
i=0
while [ "$(cut -d' ' -f4 /proc/$$/stat)" = "$first" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
cut -d' ' -f4 /proc/$$/stat > "$name.parent"
unset AEGIS_SESSION
aegis-vault list --json > "$name.list" 2> "$name.list.err"
aegis-vault get prod-db > "$name.get" 2> "$name.get.err"
echo $? > "$name.get.rc"
[ -n "$2" ] && trap '' TERM
touch "$name.done"
exec sleep 300
"""

# The agent: starts a stray by $1's means, waits until it has done its work, exits.
AGENT = r"""
echo $PPID > agent.ppid
case $1 in
  double-fork) ( sh ./stray.sh stray $2 & ) ;;
  setsid) setsid -f sh ./stray.sh stray $2 ;;
esac
i=0
while [ ! -e stray.done ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
"""

CHAIN = r"""
n=$1
echo $$ >> chain.pids
if [ "$n" -gt 0 ]; then
  sh ./chain.sh $((n - 1))
  exit $?
fi
unset AEGIS_SESSION
aegis-vault list --json > chain.list 2> chain.list.err
aegis-vault get prod-db > chain.get 2> chain.get.err
echo $? > chain.get.rc
"""


def alive(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return raw[raw.rfind(")") + 2] != "Z"


@pytest.fixture
def work(tmp_path: Path, request) -> Path:  # type: ignore[no-untyped-def]
    """The agent's folder, with its scripts; strays still alive at the end are killed."""
    folder = tmp_path / "agent"
    folder.mkdir()
    (folder / "stray.sh").write_text(STRAY)
    (folder / "agent.sh").write_text(AGENT)
    (folder / "chain.sh").write_text(CHAIN)

    def kill_strays() -> None:
        for record in list(folder.glob("*.pid*")):
            for pid in record.read_text().split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)

    request.addfinalizer(kill_strays)
    return folder


def agent_env(owner) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {key: value for key, value in owner.env.items() if key != "AEGIS_VAULT_KEY"}


class Ran(NamedTuple):
    returncode: int
    err: str
    took: float


def start_session_exec(owner, work: Path, *command: str, sandbox: bool = False) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    """``aegis-vault session exec --context acme/dev -- COMMAND`` with no key, in ``work``.
    Its output goes to files: a stray holding a pipe open must not hang the test.

    Uncontained by default: these tests follow processes by their pids on the host, and
    hold the subreaper to what it does where no sandbox (and no PID namespace) helps."""
    options = [] if sandbox else ["--no-sandbox"]
    with open(work / "session.out", "wb") as out, open(work / "session.err", "wb") as err:
        return subprocess.Popen([sys.executable, "-m", "aegis_tui", "session", "exec", *options, "--context",
                                 "acme/dev", "--", *command], env=agent_env(owner), cwd=work,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)


def finish(proc: subprocess.Popen[bytes], work: Path, started: float) -> Ran:
    try:
        proc.wait(timeout=WAIT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return Ran(proc.returncode, (work / "session.err").read_text(errors="replace"), time.monotonic() - started)


def session_exec(owner, work: Path, *command: str) -> Ran:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    return finish(start_session_exec(owner, work, *command), work, started)


def assert_acted_inside_the_session(work: Path, name: str) -> None:
    listed = (work / f"{name}.list").read_text()
    assert listed, (work / f"{name}.list.err").read_text()
    assert {item["name"] for item in json.loads(listed)} == IN_CONTEXT, f"{name} listed outside its session"
    leaked = PROD_DB in (work / f"{name}.get").read_text() + (work / f"{name}.get.err").read_text()
    assert not leaked, f"{name} read a credential outside the session's context"
    assert (work / f"{name}.get.rc").read_text().strip() == "4", (work / f"{name}.get.err").read_text()


@pytest.mark.parametrize("how", ["double-fork", "setsid"])
def test_an_orphan_stays_in_the_session_and_does_not_outlive_it(owner, broker, work, how):
    ran = session_exec(owner, work, "sh", "./agent.sh", how)
    assert ran.returncode == 0, ran.err
    assert (work / "stray.done").exists(), "the stray never finished its work"
    stray = int((work / "stray.pid").read_text())
    adopted_by = int((work / "stray.parent").read_text())
    assert adopted_by == int((work / "agent.ppid").read_text()), f"adopted by pid {adopted_by}, not session exec"
    assert_acted_inside_the_session(work, "stray")
    assert not alive(stray), f"the {how} stray (pid {stray}) outlived its session"


def test_a_stray_that_ignores_sigterm_is_killed_when_the_agent_exits(owner, broker, work):
    ran = session_exec(owner, work, "sh", "./agent.sh", "double-fork", "stubborn")
    assert ran.returncode == 0, ran.err
    stray = int((work / "stray.pid").read_text())
    assert not alive(stray), f"a stray that ignores SIGTERM (pid {stray}) outlived its session"


def test_a_process_thirty_levels_down_is_still_inside_the_session(owner, broker, work):
    ran = session_exec(owner, work, "sh", "./chain.sh", "30")
    assert ran.returncode == 0, ran.err
    pids = (work / "chain.pids").read_text().split()
    assert len(set(pids)) == 31, "the chain is not 31 nested shells"
    assert_acted_inside_the_session(work, "chain")
    assert not [pid for pid in pids if alive(int(pid))]


def test_sigterm_to_session_exec_ends_the_agent_its_strays_and_the_session(owner, broker, work):
    (work / "waiting.sh").write_text("echo $$ > agent.pid\n( sh ./stray.sh stray & )\n"
                                     "while :; do sleep 0.05; done\n")
    started = time.monotonic()
    proc = start_session_exec(owner, work, "sh", "./waiting.sh")
    wait_until(lambda: (work / "stray.done").exists() or proc.poll() is not None, "the stray to finish its work",
               timeout=WAIT)
    agent = int((work / "agent.pid").read_text())
    proc.send_signal(signal.SIGTERM)
    ran = finish(proc, work, started)
    assert ran.returncode == 128 + signal.SIGTERM, ran
    stray = int((work / "stray.pid").read_text())
    assert not alive(agent) and not alive(stray), "the agent or its stray outlived session exec"
    assert "ended" in ran.err, ran.err


@pytest.mark.parametrize("sandbox", [False, True], ids=["uncontained", "sandboxed"])
def test_ctrl_c_is_the_agents_and_session_exec_still_ends_the_session(owner, broker, work, sandbox):
    # A terminal's ^C goes to the whole foreground process group: the agent stops (a
    # shell too: SIGINT must not reach it already ignored, which a shell cannot undo),
    # session exec carries on to end the session and reports 128+SIGINT. A sandboxed
    # agent is in a session of its own: session exec passes the ^C on to it.
    if sandbox and find_bwrap() is None:
        pytest.skip("needs a working bubblewrap")
    (work / "waiting.sh").write_text("touch started\nwhile :; do sleep 0.05; done\n")
    started = time.monotonic()
    proc = start_session_exec(owner, work, "sh", "./waiting.sh", sandbox=sandbox)
    wait_until(lambda: (work / "started").exists() or proc.poll() is not None, "the agent to start", timeout=WAIT)
    os.killpg(proc.pid, signal.SIGINT)
    ran = finish(proc, work, started)
    assert ran.returncode == 128 + signal.SIGINT, ran
    assert "ended" in ran.err, ran.err

