"""``describe_process``: what the broker can verify about a peer, read from real processes.

The ancestry is what binds a session to a process tree, so it must reach the root however
deep the peer is; the command line is what an ``inject`` grant bound to an argv is checked
against, so it must come back exactly as the process was started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aegis_tui.core.processes import PeerInfo, ProcessInfo, describe_process

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")

CHAIN = """n=$1
if [ "$n" -gt 0 ]; then sh ./chain.sh $((n - 1)); exit $?; fi
echo $$ > bottom
exec sleep 60
"""


def wait_for_file(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.01)
    return path.read_text().strip()


@pytest.fixture
def deep(tmp_path: Path) -> Iterator[int]:
    """The pid of a process 30 shells below this one."""
    (tmp_path / "chain.sh").write_text(CHAIN)
    top = subprocess.Popen(["sh", "./chain.sh", "30"], cwd=tmp_path, start_new_session=True)
    try:
        yield int(wait_for_file(tmp_path / "bottom"))
    finally:
        os.killpg(top.pid, signal.SIGKILL)
        top.wait()


def test_the_ancestry_of_a_process_thirty_levels_down_reaches_the_root(deep):
    peer = describe_process(deep, os.getuid())
    pids = [pid for pid, _ in peer.ancestry]
    assert os.getpid() in pids, "the walk stopped before reaching this test process"
    assert len(pids) >= 32  # sleep, 31 shells, then us and our own ancestors
    assert [p.pid for p in peer.chain] == pids
    root = pids[-1]
    assert Path(f"/proc/{root}/stat").read_text().split(") ")[1].split()[1] == "0", "the last one has a parent"


def test_every_process_in_the_chain_names_its_executable(deep):
    peer = describe_process(deep, os.getuid())
    assert peer.exe == os.readlink(f"/proc/{deep}/exe")
    assert peer.chain[0].exe == peer.exe
    assert all(p.exe == os.readlink(f"/proc/{p.pid}/exe") for p in peer.chain[1:32])
    assert peer.chain[1].name == "sh"


def test_the_command_line_comes_back_exactly_as_started(tmp_path):
    argv = [sys.executable, "-c", "import sys, time; print('up', flush=True); time.sleep(60)",
            "two words", "", "line\nbreak", os.fsdecode(b"\xff\xferaw"), "--flag=x"]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"up\n"
        peer = describe_process(child.pid, os.getuid())
    finally:
        child.kill()
        child.wait()
    assert peer.cmdline == tuple(argv)
    assert peer.cmdline[6] == "\udcff\udcferaw"  # undecodable bytes kept, not replaced


def test_the_audit_record_names_executables_and_leaves_out_the_command_line(deep):
    record = describe_process(deep, os.getuid()).to_dict()
    assert "cmdline" not in record
    first = record["chain"][0]  # type: ignore[index]
    assert first == {"pid": deep, "name": "sleep", "exe": os.readlink(f"/proc/{deep}/exe")}
    json.dumps(record)


def test_a_gone_process_is_described_as_nothing_rather_than_an_error():
    child = subprocess.Popen(["true"])
    child.wait()
    peer = describe_process(child.pid, os.getuid())
    assert (peer.chain, peer.ancestry, peer.cmdline) == ((), (), ())
    assert peer.describe() == f"pid {child.pid}"


def test_old_style_records_without_the_new_fields_still_build():
    # The approval pop-up and tests build these by hand; exe and cmdline have defaults.
    peer = PeerInfo(7, 1000, "/usr/bin/node", "/src", (ProcessInfo(7, "node"),), ())
    assert peer.cmdline == () and peer.chain[0].exe == ""
    assert peer.describe() == "node (7)"


PROTECTED_PEER = """
import json, os, subprocess, sys
from aegis_tui.core.processes import describe_process
child = subprocess.Popen([sys.executable, "-c",
    "from aegis_tui.core.hardening import protect_process; protect_process(); print('up', flush=True); "
    "import time; time.sleep(60)", "argument"], stdout=subprocess.PIPE)
assert child.stdout.readline() == b"up\\n"
peer = describe_process(child.pid, os.getuid())
child.kill(); child.wait()
print(json.dumps({"exe": peer.exe, "cwd": peer.cwd, "argv": list(peer.cmdline[3:]),
                  "reaches_us": os.getpid() in [pid for pid, _ in peer.ancestry]}))
"""


def test_a_protected_peer_hides_exe_and_cwd_from_the_same_user_but_not_its_ancestry_or_argv(tmp_path):
    # What a broker of the same user (no capabilities) sees of a non-dumpable client.
    argv = [sys.executable, "-c", PROTECTED_PEER]
    if os.geteuid() == 0:
        argv = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all", "--", *argv]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"exe": "?", "cwd": "?", "argv": ["argument"], "reaches_us": True}
