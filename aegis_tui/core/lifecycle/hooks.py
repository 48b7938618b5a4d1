"""Running a provider hook: the old value goes in on stdin, a new one comes out on stdout.

A hook is a program the user declared in ``policy.toml`` (see ``policy.py``). What we
promise around it:

- The value is never in its argv or environment (both are readable by other processes
  of the user, and land in crash reports): only on stdin, which is closed once written.
- The hook cannot unlock the vault: ``AEGIS_VAULT_KEY`` and every other ``AEGIS_*``
  variable of ours are removed; it learns which credential it serves from
  ``AEGIS_CREDENTIAL``, ``AEGIS_CONTEXT``, ``AEGIS_SERVICE`` and ``AEGIS_VERSION``.
- It cannot hang us: it runs in a session (and process group) of its own, and at its
  timeout the whole group gets SIGTERM, then SIGKILL after a short grace, so the
  programs it started die with it. We stop reading then, even if a program that
  escaped the group still holds the pipes open.
- It cannot flood us: at most one value's worth of stdout is kept, and the last few
  KiB of stderr.
- What it printed on stderr is shown to the user only with every form of the old and
  the new value masked; the one-line ``reason`` never quotes the hook's output at all.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from typing import NamedTuple

from aegis_tui.core.lifecycle.policy import Hook
from aegis_tui.core.models import MAX_VALUE_BYTES, Credential
from aegis_tui.core.redaction.encodings import needles_for
from aegis_tui.core.redaction.masker import Masker
from aegis_tui.core.secret import Secret

OUTPUT_LIMIT = 4096  # bytes of (masked) stderr kept for the user to read
KILL_GRACE = 1.0  # seconds between SIGTERM and SIGKILL, and for draining pipes after an exit
_STDERR_KEEP = 64 * 1024  # raw stderr kept before masking: room for long values' encodings
_CHUNK = 64 * 1024
_POLL = 0.05  # how often we look whether the hook exited while a grandchild holds its pipes
_VAULT_PREFIX = "AEGIS_"


class HookResult(NamedTuple):
    ok: bool
    value: Secret | None  # the new value: rotate hooks only, and only when ok
    reason: str  # one line, never any of the hook's output
    output: str  # the hook's stderr (its end), every form of the old and new value masked
    seconds: float


class _Run(NamedTuple):
    """What happened to one hook process, before anyone judged it."""

    returncode: int | None  # negative: killed by that signal; None: could not start
    timed_out: bool
    stdout: bytes
    stderr: bytes
    stderr_cut: bool  # stderr was longer than what was kept
    seconds: float
    start_error: str = ""


def run_rotate_hook(hook: Hook, old: Secret, credential: Credential) -> HookResult:
    """Ask the provider for a new value; ``ok`` only with a value that can be stored."""
    run = _run(hook.rotate, old, _environment(credential), hook.timeout)
    value = _new_value(run.stdout)
    failure = _failure(hook, run) or _refusal(hook.name, value, old)
    output = _masked_output(run, credential.name, [old] + ([value] if value is not None else []))
    if failure:
        return HookResult(False, None, failure, output, run.seconds)
    return HookResult(True, value, f"hook {hook.name} made a new value", output, run.seconds)


def run_revoke_hook(hook: Hook, old: Secret, credential: Credential) -> HookResult:
    """Ask the provider to revoke ``old``; a hook without a revoke command has nothing to do."""
    if not hook.revoke:
        return HookResult(True, None, "no revoke hook", "", 0.0)
    run = _run(hook.revoke, old, _environment(credential), hook.timeout)
    failure = _failure(hook, run)
    output = _masked_output(run, credential.name, [old])
    return HookResult(not failure, None, failure or f"hook {hook.name} revoked the old value", output, run.seconds)


def _environment(credential: Credential) -> dict[str, str]:
    """Ours without anything that could unlock or find the vault, plus what the hook serves."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_VAULT_PREFIX)}
    env.update({
        "AEGIS_CREDENTIAL": credential.name,
        "AEGIS_CONTEXT": credential.context,
        "AEGIS_SERVICE": credential.service,
        "AEGIS_VERSION": str(credential.current_version),
    })
    return env


def _new_value(stdout: bytes) -> Secret | None:
    """stdout minus one trailing line ending (``echo`` adds one); None when nothing is left."""
    for ending in (b"\r\n", b"\n"):
        if stdout.endswith(ending):
            stdout = stdout[: -len(ending)]
            break
    return Secret(stdout) if stdout else None


def _failure(hook: Hook, run: _Run) -> str:
    """Why the process itself failed, or "" when it exited 0 in time."""
    if run.start_error:
        return f"hook {hook.name} could not start: {run.start_error}"
    if run.timed_out:
        return f"hook {hook.name} timed out after {hook.timeout:g}s"
    if run.returncode is not None and run.returncode < 0:
        return f"hook {hook.name} was killed by signal {-run.returncode}"
    if run.returncode:
        return f"hook {hook.name} exited with status {run.returncode}"
    return ""


def _refusal(name: str, value: Secret | None, old: Secret) -> str:
    """Why a cleanly printed value cannot become the new version, or ""."""
    if value is None:
        return f"hook {name} printed nothing"
    if len(value) > MAX_VALUE_BYTES:
        return f"hook {name} printed more than {MAX_VALUE_BYTES // (1024 * 1024)} MiB"
    if value == old:
        return f"hook {name} printed the old value again"
    return ""


# -- the process --------------------------------------------------------------------------------
def _run(argv: tuple[str, ...], old: Secret, env: dict[str, str], timeout: float) -> _Run:
    started = time.monotonic()
    try:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=env, start_new_session=True, close_fds=True)
    except OSError as err:  # missing, not executable, not a program
        return _Run(None, False, b"", b"", False, time.monotonic() - started,
                    f"{err.strerror or type(err).__name__}: {argv[0]}")
    pipes = _Pipes(process, old.reveal())
    finished = False
    try:
        finished = pipes.exchange(started + timeout)
    finally:
        _stop_group(process, gently=not finished)
        pipes.close()
    return _Run(process.returncode, not finished, bytes(pipes.stdout), bytes(pipes.stderr), pipes.stderr_cut,
                time.monotonic() - started)


class _Pipes:
    """Feeds stdin and collects stdout and stderr, all at once and within bounds.

    One loop rather than threads or ``communicate``: we must be able to stop at a
    deadline however the hook behaves (not reading stdin, never closing stdout, leaving a
    grandchild with the pipes), and keep only bounded amounts of what it prints.
    """

    def __init__(self, process: subprocess.Popen[bytes], stdin_data: bytes) -> None:
        self._process = process
        self._pending = memoryview(stdin_data)
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.stderr_cut = False
        self._selector = selectors.DefaultSelector()
        for pipe, events in ((process.stdin, selectors.EVENT_WRITE), (process.stdout, selectors.EVENT_READ),
                             (process.stderr, selectors.EVENT_READ)):
            assert pipe is not None  # all three were asked for
            os.set_blocking(pipe.fileno(), False)
            self._selector.register(pipe.fileno(), events, pipe)

    def exchange(self, deadline: float) -> bool:
        """Pump until the hook exited and its pipes closed; False when ``deadline`` came first.

        Once the hook has exited, a program it left behind holding the pipes gets
        ``KILL_GRACE`` more, then we stop listening (it is killed with the group).
        """
        stop, exited = deadline, False
        while self._selector.get_map():
            now = time.monotonic()
            if not exited and _has_exited(self._process.pid):
                stop, exited = min(deadline, now + KILL_GRACE), True
            if now >= stop:
                break
            for key, _ in self._selector.select(min(stop - now, _POLL)):
                self._service(key)
        return _wait_exit(self._process.pid, deadline)

    def _service(self, key: selectors.SelectorKey) -> None:
        if key.data is self._process.stdin:
            self._write(key.fd)
            return
        try:
            data = os.read(key.fd, _CHUNK)
        except BlockingIOError:
            return
        if not data:
            self._selector.unregister(key.fd)
        elif key.data is self._process.stdout:
            self._keep_stdout(data)
        else:
            self._keep_stderr(data)

    def _write(self, fd: int) -> None:
        """Write what fits; close stdin once all is written, or when the hook stopped reading."""
        try:
            written = os.write(fd, self._pending[:_CHUNK])
            self._pending = self._pending[written:]
        except BlockingIOError:
            return
        except BrokenPipeError:
            self._pending = self._pending[:0]
        if not self._pending:
            self._selector.unregister(fd)
            self._process.stdin.close()  # type: ignore[union-attr]

    def _keep_stdout(self, data: bytes) -> None:
        """Up to one byte more than the largest value (plus a line ending): enough to refuse it."""
        room = MAX_VALUE_BYTES + 3 - len(self.stdout)
        self.stdout += data[:max(room, 0)]

    def _keep_stderr(self, data: bytes) -> None:
        self.stderr += data
        excess = len(self.stderr) - _STDERR_KEEP
        if excess > 0:
            del self.stderr[:excess]
            self.stderr_cut = True

    def close(self) -> None:
        self._selector.close()
        for pipe in (self._process.stdin, self._process.stdout, self._process.stderr):
            if pipe is not None:
                pipe.close()


def _stop_group(process: subprocess.Popen[bytes], *, gently: bool) -> None:
    """End everything left in the hook's process group, then reap the hook.

    ``gently`` (a timeout): SIGTERM first, so it can clean up, and SIGKILL after
    ``KILL_GRACE``. Either way the group gets SIGKILL: nothing a hook started outlives it.
    """
    if gently:
        _signal_group(process.pid, signal.SIGTERM)
        _wait_exit(process.pid, time.monotonic() + KILL_GRACE)
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _has_exited(pid: int) -> bool:
    """Whether the hook exited, without reaping it: until it is reaped its pid, which is
    also its process group's id, cannot pass to a stranger we would then signal."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _wait_exit(pid: int, deadline: float) -> bool:
    """Wait (without reaping) until the hook exits or ``deadline``; whether it exited."""
    while not _has_exited(pid):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(_POLL, left))
    return True


def _signal_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):  # the group is gone already
        pass


# -- what the user may see ------------------------------------------------------------------------
def _masked_output(run: _Run, label: str, values: list[Secret]) -> str:
    """The end of the hook's stderr, every form of ``values`` shown as ``[aegis:label]``."""
    raw = run.stderr
    if not raw:  # building a masker for a large value costs seconds; nothing to mask here
        return ""
    if run.stderr_cut:  # the kept part may begin inside a value: drop that part first
        raw = raw[_safe_start(raw, values):]
    stream = Masker({label: [value.reveal() for value in values]}).stream()
    masked = stream.feed(raw) + stream.flush()
    cut = len(masked) > OUTPUT_LIMIT or run.stderr_cut
    return ("…" if cut else "") + masked[-OUTPUT_LIMIT:].decode("utf-8", errors="replace")


def _safe_start(raw: bytes, values: list[Secret]) -> int:
    """Where stderr cut at an arbitrary byte can begin without showing part of a value.

    The masker only hides whole needles; the tail of one cut in two would show. Any
    such tail is shorter than the longest needle, so skip that much, and further past
    any needle the skipped bytes begin (the masker would hide it, but we cut into it).
    """
    needles = {needle for value in values for needle in needles_for(value.reveal())}
    start = max(map(len, needles), default=1) - 1
    moved = True
    while moved and start < len(raw):
        moved = False
        for needle in needles:
            at = raw.rfind(needle, 0, start + len(needle) - 1)  # the last one beginning before start
            if at >= 0 and at + len(needle) > start:
                start, moved = at + len(needle), True
    return min(start, len(raw))
