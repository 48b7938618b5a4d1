"""``aegis_tui.core.hardening``, read back from the kernel in real child processes.

Each test runs its probe in a fresh interpreter: making a process non-dumpable or a
child subreaper cannot be undone from inside, and the test runner must stay as it was.
What the probe reports comes from the kernel (``prctl(PR_GET_DUMPABLE)``,
``getrlimit``, ``/proc/PID/stat``), never from the module under test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl and /proc are Linux's")

PROBE_HEADER = """
import ctypes, json, os, resource, signal, subprocess, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def dumpable():
    return libc.prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
def subreaper():
    value = ctypes.c_int(-1)
    libc.prctl(37, ctypes.byref(value), 0, 0, 0)  # PR_GET_CHILD_SUBREAPER
    return value.value
def parent_of(pid):
    with open(f"/proc/{pid}/stat") as handle:
        raw = handle.read()
    return int(raw[raw.rfind(")") + 2:].split()[1])
def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return False
    return raw[raw.rfind(")") + 2:].split()[0] != "Z"
def wait_for(path, timeout=20):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) or not open(path).read().strip():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {path}")
        time.sleep(0.01)
    return open(path).read().strip()
"""


def probe(body: str, tmp_path: Path, timeout: float = 60) -> dict:
    """Run ``body`` (after PROBE_HEADER) in a fresh interpreter in ``tmp_path``; the JSON
    object it prints on its last line."""
    code = PROBE_HEADER + textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=timeout, start_new_session=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_fresh_process_is_dumpable_so_the_read_back_below_means_something(tmp_path):
    found = probe("print(json.dumps({'dumpable': dumpable(), 'subreaper': subreaper()}))", tmp_path)
    assert found == {"dumpable": 1, "subreaper": 0}


def test_protect_process_makes_the_process_non_dumpable_with_no_core_limit(tmp_path):
    found = probe("""
        from aegis_tui.core.hardening import protect_process
        protect_process()
        print(json.dumps({'dumpable': dumpable(), 'core': resource.getrlimit(resource.RLIMIT_CORE)}))
    """, tmp_path)
    assert found == {"dumpable": 0, "core": [0, 0]}


def test_protect_process_twice_is_harmless(tmp_path):
    found = probe("""
        from aegis_tui.core.hardening import protect_process
        protect_process(); protect_process()
        print(json.dumps({'dumpable': dumpable(), 'core': resource.getrlimit(resource.RLIMIT_CORE)}))
    """, tmp_path)
    assert found == {"dumpable": 0, "core": [0, 0]}


def test_importing_the_module_loads_no_ctypes_so_the_cli_pays_only_when_it_protects(tmp_path):
    found = probe("""
        for name in [n for n in sys.modules if n == 'ctypes' or n.startswith('ctypes.')]:
            del sys.modules[name]
        import aegis_tui.core.hardening
        print(json.dumps({'ctypes': 'ctypes' in sys.modules}))
    """, tmp_path)
    assert found == {"ctypes": False}


def test_become_subreaper_adopts_a_double_forked_orphan_instead_of_pid_1(tmp_path):
    found = probe("""
        from aegis_tui.core.hardening import become_subreaper
        become_subreaper()
        # sh starts sleep in the background and exits at once: sleep is an orphan.
        subprocess.run(['sh', '-c', 'sleep 30 & echo $! > orphan'], check=True)
        orphan = int(wait_for('orphan'))
        adopted = parent_of(orphan)
        os.kill(orphan, signal.SIGKILL)
        os.waitpid(orphan, 0)
        print(json.dumps({'subreaper': subreaper(), 'adopted': adopted == os.getpid()}))
    """, tmp_path)
    assert found == {"subreaper": 1, "adopted": True}


def test_reap_tree_ends_orphans_and_their_children_and_reaps_them(tmp_path):
    found = probe("""
        from aegis_tui.core.hardening import become_subreaper, reap_tree
        become_subreaper()
        # An orphan (its parent exits) that has a child of its own, in a new session.
        subprocess.run(['sh', '-c', "setsid sh -c 'sleep 60 & echo $! > grandchild; echo $$ > orphan; wait' &"],
                       check=True)
        orphan, grandchild = int(wait_for('orphan')), int(wait_for('grandchild'))
        before = [alive(orphan), alive(grandchild), parent_of(orphan) == os.getpid()]
        started = time.monotonic()
        ended = reap_tree(5.0)
        took = time.monotonic() - started
        try:
            os.waitpid(-1, os.WNOHANG)
            left = 'children'
        except ChildProcessError:
            left = 'none'
        print(json.dumps({'before': before, 'after': [alive(orphan), alive(grandchild)], 'ended': ended,
                          'quick': took < 2.0, 'left': left}))
    """, tmp_path)
    assert found["before"] == [True, True, True]
    assert found["after"] == [False, False]
    assert found["ended"] == 2
    assert found["quick"], "processes that stop on SIGTERM must not wait for the timeout"
    assert found["left"] == "none", "reap_tree left an unreaped child (a zombie)"


def test_reap_tree_gives_sigterm_first_so_a_process_can_clean_up(tmp_path):
    found = probe("""
        from aegis_tui.core.hardening import become_subreaper, reap_tree
        become_subreaper()
        subprocess.run(['sh', '-c', "sh -c 'trap \\"echo tidy > cleaned; exit 0\\" TERM; echo $$ > orphan; "
                        "while :; do sleep 0.05; done' &"], check=True)
        orphan = int(wait_for('orphan'))
        reap_tree(5.0)
        print(json.dumps({'cleaned': os.path.exists('cleaned'), 'alive': alive(orphan)}))
    """, tmp_path)
    assert found == {"cleaned": True, "alive": False}


def test_reap_tree_kills_what_ignores_sigterm_once_the_timeout_is_over(tmp_path):
    found = probe("""
        from aegis_tui.core.hardening import become_subreaper, reap_tree
        become_subreaper()
        subprocess.run(['sh', '-c', "sh -c 'trap \\"\\" TERM; echo $$ > stubborn; while :; do sleep 0.05; done' &"],
                       check=True)
        stubborn = int(wait_for('stubborn'))
        started = time.monotonic()
        reap_tree(0.5)
        took = time.monotonic() - started
        print(json.dumps({'alive': alive(stubborn), 'took': took}))
    """, tmp_path)
    assert found["alive"] is False
    assert 0.4 <= found["took"] < 5.0, found["took"]


def test_reap_tree_with_nothing_left_returns_at_once(tmp_path):
    found = probe("""
        from aegis_tui.core.hardening import become_subreaper, reap_tree
        become_subreaper()
        subprocess.run(['true'], check=True)
        started = time.monotonic()
        ended = reap_tree(5.0)
        print(json.dumps({'ended': ended, 'took': time.monotonic() - started}))
    """, tmp_path)
    assert found["ended"] == 0
    assert found["took"] < 0.5


def test_reap_tree_ends_a_process_that_keeps_forking(tmp_path):
    # Each generation starts the next and exits: a race against a listing of children.
    script = tmp_path / "hop.sh"
    script.write_text("trap '' TERM\necho $$ >> hops\nsleep 0.02\nsh ./hop.sh &\n")
    found = probe("""
        from aegis_tui.core.hardening import become_subreaper, reap_tree
        become_subreaper()
        subprocess.run(['sh', './hop.sh'], check=True)
        wait_for('hops')
        time.sleep(0.3)
        reap_tree(0.3)
        time.sleep(0.3)  # had one escaped, it would have written more hops by now
        hops = [int(line) for line in open('hops').read().split()]
        count = len(hops)
        time.sleep(0.3)
        print(json.dumps({'alive': [pid for pid in hops if alive(pid)],
                          'still_hopping': len(open('hops').read().split()) != count}))
    """, tmp_path)
    assert found == {"alive": [], "still_hopping": False}


def test_on_linux_both_calls_say_they_applied(tmp_path):
    # Off Linux they return False and do nothing: callers never need to check the platform.
    found = probe("""
        from aegis_tui.core import hardening
        print(json.dumps({'protected': hardening.protect_process(), 'reaper': hardening.become_subreaper()}))
    """, tmp_path)
    assert found == {"protected": True, "reaper": True}


def test_protection_survives_in_the_process_but_not_across_exec_into_another_program(tmp_path):
    # Why run and session exec must protect themselves: the children they start are
    # dumpable again after execve, so what protects is not handing them the key.
    found = probe("""
        from aegis_tui.core.hardening import protect_process
        protect_process()
        child = subprocess.run([sys.executable, '-c',
                                'import ctypes; print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))'],
                               capture_output=True, text=True, check=True)
        print(json.dumps({'self': dumpable(), 'child': int(child.stdout)}))
    """, tmp_path)
    assert found == {"self": 0, "child": 1}



def test_without_proc_children_files_the_tree_is_read_from_every_stat_alike(tmp_path):
    # Kernels built without CONFIG_PROC_CHILDREN have no /proc/PID/task/TID/children.
    found = probe("""
        from aegis_tui.core import hardening
        children = [subprocess.Popen(['sleep', '30']) for _ in range(3)]
        listed = sorted(hardening._children(os.getpid()))
        scanned = sorted(hardening._children_by_scan()(os.getpid()))
        for child in children:
            child.kill(); child.wait()
        print(json.dumps({'same': listed == scanned, 'count': len(listed)}))
    """, tmp_path)
    assert found == {"same": True, "count": 3}
