"""Keeping what a process holds out of reach of the other processes of its user (Linux).

Without this, any process of the same uid (a prompt-injected agent, say) can read another's
``/proc/PID/environ`` (``AEGIS_VAULT_KEY`` sits there for good: ``os.unsetenv`` does not
erase the initial environment block) and ``/proc/PID/mem``, attach a debugger, or force a
core dump (``prlimit --core=unlimited --pid PID`` then ``kill -SEGV PID``) of the broker
that holds every decrypted value. Measured here, see ``../shared/FIELD-NOTES.md``
"Same-user isolation on Linux".

- ``protect_process``: ``PR_SET_DUMPABLE`` 0 makes the kernel refuse ptrace-style access
  to this process by anyone without ``CAP_SYS_PTRACE``: ``environ``, ``mem``, ``maps``,
  ``fd``, ``exe`` and ``cwd`` under ``/proc/PID`` become root's, and no core is written.
  ``RLIMIT_CORE`` (0, 0) is a second lock on the core: a hard limit of 0 cannot be raised
  again without ``CAP_SYS_RESOURCE``. Called by every process that holds the key or a
  value: the app, the broker (``serve``), ``session exec``, ``run``, the CLI once it
  unlocks. Dumpability comes back on ``execve`` of an ordinary program, so this protects
  the process that holds a value, never the child it starts: what keeps a child from the
  key is not handing it over (``cli/unlock.py`` takes it out of ``os.environ``).
  The price: a broker of the same user can no longer read ``exe`` or ``cwd`` of a
  protected peer either (``stat`` and ``cmdline`` stay readable).
- ``become_subreaper`` and ``reap_tree``: ``session exec`` binds a session to its own
  process tree. A double fork or ``setsid -f`` orphans a process, and an orphan is adopted
  by pid 1, outside the tree. As a child subreaper (``PR_SET_CHILD_SUBREAPER``) we adopt
  them instead, so they stay in the session; when the agent exits, ``reap_tree`` ends what
  is left, so nothing started in the session outlives it.

``ctypes`` (about 2 ms to import) is loaded only when one of these is called: modules that
merely import this one pay nothing. Off Linux every function is a no-op.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable

_LINUX = sys.platform.startswith("linux")
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_KILL_GRACE = 5.0  # after the timeout: how long SIGKILL rounds go on (a process in D state)

_libc = None


def _prctl(option: int, value: int) -> None:
    global _libc
    import ctypes

    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl({option}): {os.strerror(code)}")


def protect_process() -> bool:
    """Make this process unreadable to other processes of the user and forbid core dumps.
    ``False`` (and nothing done) off Linux. Calling it again is harmless."""
    if not _LINUX:
        return False
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _prctl(_PR_SET_DUMPABLE, 0)
    return True


def become_subreaper() -> bool:
    """Adopt orphaned descendants (double-forked, ``setsid -f``) instead of pid 1, so they
    stay in this process tree. ``False`` (and nothing done) off Linux."""
    if not _LINUX:
        return False
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    return True


def wait_adopting(pid: int) -> int:
    """Wait for our child ``pid`` and return its wait status, reaping the orphans a
    subreaper adopts meanwhile (each would stay a zombie until the session ends)."""
    while True:
        try:
            done, status = os.waitpid(-1, 0)
        except ChildProcessError:  # someone else reaped it: nothing to report
            return 0
        if done == pid:
            return status


def reap_tree(timeout: float) -> int:
    """End every descendant of this process: SIGTERM (and SIGCONT, so a stopped one can act
    on it) at once, SIGKILL to whatever is left after ``timeout`` seconds; reap our
    children. Returns how many processes were signalled. Call it when nothing else in this
    process waits for a child: it reaps them all.

    The tree is read again each round (``/proc/PID/task/TID/children``, or every
    ``/proc/PID/stat`` on kernels without that file): a process may fork while we signal,
    and its orphans come to us (we are their subreaper). Our own children's pids cannot be
    recycled before we reap them; a deeper one could only if its parent reaped it and the
    pid space wrapped round in the microseconds between reading the tree and signalling.
    """
    if not _LINUX:
        return 0
    import signal  # here: its enum import costs milliseconds the other functions need not pay

    signalled: set[int] = set()
    deadline = time.monotonic() + timeout
    give_up = deadline + _KILL_GRACE
    pause = 0.001
    while True:
        living = _living_descendants()
        _reap_children()  # after the listing: what it saw as dead is a zombie by now, or gone
        if not living:
            return len(signalled)
        now = time.monotonic()
        if now >= give_up:
            return len(signalled)  # unkillable (uninterruptible sleep): nothing more to do
        if now >= deadline:
            for pid in living:
                _signal(pid, signal.SIGKILL)
        else:
            for pid in living - signalled:
                _signal(pid, signal.SIGTERM)
                _signal(pid, signal.SIGCONT)
        signalled |= living
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):  # gone, or became something we may not touch
        pass


def _reap_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _living_descendants() -> set[int]:
    """Every descendant of this process that has not exited (zombies are left to their
    parent's wait, or to ours once they are reparented to us)."""
    me = os.getpid()
    children = _children if os.path.exists(f"/proc/{me}/task/{me}/children") else _children_by_scan()
    found: set[int] = set()
    living: set[int] = set()
    frontier = [me]
    while frontier:
        for child in children(frontier.pop()):
            if child not in found:
                found.add(child)
                frontier.append(child)
                if not _is_zombie(child):
                    living.add(child)
    return living


def _children(pid: int) -> list[int]:
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    children: list[int] = []
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children", "rb") as handle:
                children.extend(int(field) for field in handle.read().split())
        except OSError:
            pass
    return children


def _children_by_scan() -> Callable[[int], list[int]]:
    """``_children`` from every process's parent pid (kernels without CONFIG_PROC_CHILDREN)."""
    by_parent: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as handle:
                    raw = handle.read()
                parent = int(raw[raw.rfind(b")") + 2:].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            by_parent.setdefault(parent, []).append(int(name))
    return lambda pid: by_parent.get(pid, [])


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return True  # gone already
    return raw[raw.rfind(b")") + 2:raw.rfind(b")") + 3] in (b"Z", b"X")
