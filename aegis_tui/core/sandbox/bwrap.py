"""Applying a ``SandboxPlan`` with bubblewrap (``bwrap``, 0.8 measured here).

The flags, and why each (measured on kernel 6.18, as root and as an unprivileged user):

- ``--unshare-user``: without a user namespace, root keeps CAP_SYS_ADMIN inside and can
  unmount what hides the vault. ``--cap-drop ALL`` would be the other way, but it breaks
  a nested ``bwrap`` (Claude Code's own sandbox) entirely.
- Root only: bwrap keeps root's capabilities in the namespace it made the mounts in, so
  ``umount`` of the tmpfs over the vault folder still works there (seen: the vault file
  came back). The agent is therefore started through ``unshare --user --map-root-user``:
  it runs as root in a user namespace of its own, which does not own the mount
  namespace, so every mount made for it is out of its reach. Unprivileged, bwrap does
  the same by itself (its second user namespace). A nested ``bwrap`` still runs in both
  cases, with or without ``--unshare-user``; one form does not as root: ``--unshare-pid
  --proc /proc`` without ``--unshare-user`` (a new proc needs a fully visible one).
- ``--unshare-pid`` and ``--proc /proc``: the agent sees only its own processes, not the
  broker or anything else of the user's.
- ``--new-session``: no controlling terminal, so no ``TIOCSTI`` typing into the user's
  shell; ``session exec`` forwards the terminal's signals itself. bwrap sets
  no-new-privs, so no setuid program raises the agent's rights.
- ``--die-with-parent``: the sandbox ends with ``session exec`` (or the runner).
- ``--bind / /`` then the plan: folders hidden under an empty 0700 tmpfs, files and
  sockets under ``/dev/null``, read-only places re-bound read-only, and the session's
  socket bound at the broker's usual path inside the (hidden) runtime folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from aegis_tui.core.sandbox.plan import SandboxPlan

_BASE_FLAGS = ("--unshare-user", "--unshare-pid", "--die-with-parent", "--new-session",
               "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc")
_PROBE_SECONDS = 10.0
_probed: dict[str, str | None] = {}


def find_bwrap() -> str | None:
    """A ``bwrap`` on PATH that can make this sandbox here (tried once per process with
    ``true``), else None: missing, or user namespaces are off, or (as root) no
    ``unshare`` to drop the mount rights."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    if path not in _probed:
        _probed[path] = path if _works(path) else None
    return _probed[path]


def _works(path: str) -> bool:
    lock = _mount_lock()
    if lock is None:
        return False
    try:
        probe = subprocess.run([path, *_BASE_FLAGS, "--", *lock, "true"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=_PROBE_SECONDS)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def _mount_lock() -> list[str] | None:
    """What runs the agent where it cannot undo the sandbox's mounts: nothing extra when
    unprivileged (bwrap does it), ``unshare`` as root; None when that is missing."""
    if os.geteuid() != 0:
        return []
    unshare = shutil.which("unshare")
    return None if unshare is None else [unshare, "--user", "--map-root-user"]


def bwrap_argv(plan: SandboxPlan, command: list[str], *, cwd: str) -> list[str]:
    """The command line that runs ``command`` in ``cwd`` inside ``plan``'s sandbox.
    Raises ``RuntimeError`` when no usable bwrap is here (callers check ``find_bwrap``
    first and say so in their own words)."""
    bwrap = find_bwrap()
    lock = _mount_lock()
    if bwrap is None or lock is None:
        raise RuntimeError("no usable bwrap here")
    argv = [bwrap, *_BASE_FLAGS]
    if plan.network == "none":
        argv.append("--unshare-net")
    for path, _ in plan.read_only:
        if os.path.lexists(path):
            argv += ["--ro-bind", path, path]
    for path, _ in plan.hidden:
        if os.path.isdir(path):
            argv += ["--perms", "0700", "--tmpfs", path]
        elif os.path.lexists(path):
            argv += ["--ro-bind", "/dev/null", path]
    if plan.session_socket:
        from aegis_tui.core.broker.runtime import session_socket_inside

        argv += ["--bind", plan.session_socket, session_socket_inside()]
    return [*argv, "--chdir", cwd, "--", *lock, *command]


def sandboxed_pid(bwrap_pid: int) -> int | None:
    """The host pid of the command a running ``bwrap_argv`` sandbox started, or None
    (not started yet, or gone). bwrap forks the namespace's init, which forks the command
    (``unshare`` execs it in place): the command is the only grandchild. Whoever signals
    the agent needs it: bwrap forwards no signal, and with ``--new-session`` the terminal
    sends the agent none."""
    for _ in range(2):
        children = _children(bwrap_pid)
        if not children:
            return None
        bwrap_pid = children[0]
    return bwrap_pid


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as handle:
            return [int(field) for field in handle.read().split()]
    except OSError:
        return []
