"""Running a command whose output may reach the agent only through a filter.

The child gets its secrets in its environment and nowhere else; everything it prints
passes an ``OutputFilter`` (the masker) before it reaches our stdout and stderr, which
is what the agent reads. Two ways to connect it:

- **pipes**, when our stdout is not a terminal (how agents run commands): stdout and
  stderr stay apart, each with a filter of its own.
- **a pseudo-terminal**, when our stdout is a terminal: colours, prompts and progress
  bars only appear when a program sees a terminal, so it gets one of its own, and all
  it shows passes the filter on its way to ours.

Signals asking the command to stop (SIGINT, SIGTERM, SIGHUP, SIGQUIT) are passed on to
the child's process group, and we go on draining its output until it exits. The child
gets a group (on a PTY, a session) of its own, except on pipes when a shell has handed
us its terminal as stdin: there it stays in ours, so it can still read that terminal
and Ctrl-C, Ctrl-Z and ``fg`` reach it straight from the terminal.

Plain ``os``, ``select``, ``signal`` and ``termios``: this is on the hot path of every
``aegis-vault run``, where ``subprocess`` or ``asyncio`` would cost more to import than
the whole run is allowed to take.
"""

from __future__ import annotations

import errno
import os
import select
import sys
import termios
import time
import tty

from aegis_tui.core.errors import AegisError, UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (~2 ms of every ``run``)
if not TYPE_CHECKING:
    # ``_signal`` is ``signal`` without the enum wrappers: importing ``signal`` (and with it
    # ``enum``) costs ~1.5 ms of every ``run``, and plain numbers serve here just as well.
    import _signal as signal
else:
    import signal
    from collections.abc import Callable, Mapping
    from types import FrameType
    from typing import Any, NoReturn, Protocol

    _Handler = Callable[[int, FrameType | None], object] | int | None

STDOUT, STDERR = 1, 2
IDLE_FLUSH_SECONDS = 0.02

_CHUNK = 64 * 1024
_STOP_REQUESTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# Held back from before the fork until our handlers are in place: a signal meant for
# the command then reaches the command, never a half-made child or the old handler.
_HELD = frozenset({*_STOP_REQUESTS, signal.SIGWINCH})


if TYPE_CHECKING:
    class OutputFilter(Protocol):
        """Receives the child's output; returns what may be shown. One per channel."""

        def feed(self, data: bytes) -> bytes: ...

        def flush(self) -> bytes: ...


class ChildResult:
    """How the command ended. A plain class: ``typing.NamedTuple`` would import typing."""

    __slots__ = ("exit_code", "signal", "duration")

    def __init__(self, exit_code: int | None, signal: int | None, duration: float) -> None:
        self.exit_code = exit_code  # None when killed by a signal
        self.signal = signal
        self.duration = duration  # seconds, monotonic

    def __repr__(self) -> str:
        return f"ChildResult(exit_code={self.exit_code!r}, signal={self.signal!r}, duration={self.duration!r})"


def should_use_pty() -> bool:
    """A terminal on our stdout means a person may be watching: give the child one too."""
    return os.isatty(1)


def run_child(
    argv: list[str],
    env: dict[str, str],
    *,
    filters: Callable[[int], OutputFilter],
    use_pty: bool,
    cwd: str | None = None,
    program: str | None = None,
) -> ChildResult:
    """Run ``argv`` with exactly ``env``, showing its output only as ``filters`` pass it.

    Returns once the child has exited and its output has reached EOF: a background
    process it left holding the output keeps us waiting, since what that prints must be
    filtered too. Signals asking "the command" to stop are passed on to it, and we stop
    when it does, so nothing it prints on the way out escapes the filter. Call from the
    main thread: only it may install signal handlers. ``program``: the executable
    already found (``find_program``) and shown to whoever approved the values in ``env``.
    """
    if not argv:
        raise UsageError("no command given")
    where = os.path.abspath(cwd) if cwd is not None else None
    program = program or find_program(argv[0], env, where)
    link: _PtyLink | _PipeLink
    try:
        link = _PtyLink(filters(STDOUT)) if use_pty else _PipeLink(filters(STDOUT), filters(STDERR))
    except OSError as exc:  # out of descriptors or PTYs
        raise _cannot_start(argv[0], exc) from None
    started = time.monotonic()
    try:
        status = _supervise(program, argv, env, where, link)
    finally:
        link.close()
    duration = time.monotonic() - started
    if os.WIFSIGNALED(status):
        return ChildResult(None, os.WTERMSIG(status), duration)
    return ChildResult(os.WEXITSTATUS(status), None, duration)


def exit_status(result: ChildResult) -> int:
    """What ``run`` exits with: the child's code, or death by the child's signal.

    Dying by the same signal (rather than exiting 128+n) lets a shell or an agent see
    "killed by SIGTERM" exactly as if it had run the command itself. 128+n remains when
    the signal cannot be re-raised (not on the main thread).
    """
    if result.signal is None:
        assert result.exit_code is not None  # a ChildResult holds one or the other
        return result.exit_code
    signum = result.signal
    for stream in (sys.stdout, sys.stderr):  # dying skips Python's own flush at exit
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        if signum != signal.SIGKILL:  # the one signal whose disposition is fixed
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    except ValueError:
        return 128 + signum
    os.kill(os.getpid(), signum)
    return 128 + signum


def find_program(command: str, env: Mapping[str, str], cwd: str | None = None) -> str:
    """Where ``command`` is, searched as execvp would but on the child's PATH.

    The environment we were given is the child's, not ours; and a missing command must
    fail before anything starts, with a message rather than a bare exit code 127.
    """
    if "/" in command:
        candidates = [command]
    else:
        folders = env.get("PATH", os.defpath).split(os.pathsep)
        candidates = [os.path.join(folder, command) for folder in folders]
    unusable = False
    for candidate in candidates:
        path = os.path.join(cwd or "", candidate)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.abspath(path)
        unusable = unusable or os.path.exists(path)
    if unusable:
        raise UsageError(f"command is not an executable file: {command}")
    raise UsageError(f"command not found: {command}")


def _supervise(program: str, argv: list[str], env: Mapping[str, str], cwd: str | None,
               link: _PtyLink | _PipeLink) -> int:
    """Start the child, pump its output to EOF, wait for it; return its wait status.

    Should anything fail on our side once it runs, the child is killed: nobody would be
    left to read, and mask, what it prints.
    """
    before = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        pid = _spawn(program, argv, env, cwd, link.wire, before)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        raise
    relay = _SignalRelay(pid, own_group=not link.shares_group, resize=link.resize)
    try:
        try:
            relay.install()
            link.attached()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)
        _pump(link.channels, relay.wakeup_fd, link.keyboard)
        # Wait without reaping: until we reap, its pid (and group id) cannot be reused,
        # so a signal forwarded late cannot reach a stranger.
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    except BaseException:
        relay.send(signal.SIGKILL)
        raise
    finally:
        relay.uninstall()
        _, status = os.waitpid(pid, 0)
    return status


def _spawn(program: str, argv: list[str], env: Mapping[str, str], cwd: str | None,
           wire: Callable[[], None], mask: set[int]) -> int:
    """fork + exec; returns the pid once the exec has happened, or raises why it could not.

    Returning only after the exec means the child's process group or session exists
    before any signal is forwarded to it.
    """
    leaked = _inheritable_fds()
    try:
        report_r, report_w = os.pipe()  # close-on-exec: EOF on it means the exec happened
    except OSError as exc:
        raise _cannot_start(argv[0], exc) from None
    try:
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(report_w)
            raise _cannot_start(argv[0], exc) from None
        if pid == 0:
            _exec_child(program, argv, env, cwd, wire, mask, leaked, report_w)
        os.close(report_w)
        report = b""
        while chunk := os.read(report_r, 64):
            report += chunk
    finally:
        os.close(report_r)
    if report:
        os.waitpid(pid, 0)
        raise _start_failure(report, argv[0], cwd)
    return pid


def _exec_child(program: str, argv: list[str], env: Mapping[str, str], cwd: str | None,
                wire: Callable[[], None], mask: set[int], leaked: list[int],
                report_w: int) -> NoReturn:
    """In the forked child: connect, tidy up, exec. Failures go to ``report_w`` as
    ``stage:errno``, never as text that could carry a value from ``env``."""
    stage = "setup"
    try:
        wire()
        for fd in leaked:
            os.close(fd)
        # Python ignores these two; programs expect the defaults. A handler of the
        # caller's must not run here either, so the held signals fall back to default
        # (an inherited "ignore" stays, as it would through any exec).
        for signum in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(signum, signal.SIG_DFL)
        for signum in _HELD:
            if callable(signal.getsignal(signum)):
                signal.signal(signum, signal.SIG_DFL)
        if cwd is not None:
            stage = "chdir"
            os.chdir(cwd)
        stage = "exec"
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.execve(program, argv, env)
    except BaseException as exc:
        code = exc.errno if isinstance(exc, OSError) and exc.errno else 0
        os.write(report_w, f"{stage}:{code}".encode())
    finally:
        os._exit(127)


def _cannot_start(command: str, exc: OSError) -> AegisError:
    return AegisError(f"could not start {command}: {exc.strerror}")


def _start_failure(report: bytes, command: str, cwd: str | None) -> AegisError:
    """The error for what the child reported between fork and exec."""
    stage, _, code = report.decode("ascii", "replace").partition(":")
    reason = os.strerror(int(code)) if code.isdigit() and int(code) else "invalid argument"
    if stage == "chdir":
        return UsageError(f"cannot change to directory {cwd}: {reason}")
    if stage == "exec":
        return UsageError(f"cannot run {command}: {reason}")
    return AegisError(f"could not start {command}: {reason}")


def _inheritable_fds() -> list[int]:
    """Descriptors above stdio that an exec would pass on.

    Python opens everything close-on-exec, but whoever started us, or a C library, may
    not have; the child gets 0, 1 and 2 and nothing else. Listing them beats closing up
    to the descriptor limit, which can be a billion.
    """
    folder = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    found = []
    for name in os.listdir(folder):
        fd = int(name)
        try:
            if fd > 2 and os.get_inheritable(fd):
                found.append(fd)
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return found


def _foreground_of_stdin() -> bool:
    """Is stdin our controlling terminal, with us its foreground job (a shell's prompt
    handed it to us)?"""
    try:
        return os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def _copy_window_size(source: int, target: int) -> None:
    try:
        termios.tcsetwinsize(target, termios.tcgetwinsize(source))
    except termios.error:  # our stdout is not a terminal after all: keep the default
        pass


def _write_all(fd: int, data: bytes) -> None:
    """Write everything, even to a descriptor someone else left non-blocking."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            waiter = select.poll()
            waiter.register(fd, select.POLLOUT)
            waiter.poll()


class _Channel:
    """One stream of the child's output: read from ``source``, filtered, shown on ``sink``."""

    def __init__(self, source: int, sink: int, output_filter: OutputFilter) -> None:
        self.source = source
        self.open = True
        self.flush_at: float | None = None  # when to flush unless more data comes first
        self._sink = sink
        self._filter = output_filter
        self._sink_gone = False

    def read(self, now: float) -> None:
        try:
            data = os.read(self.source, _CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:  # EIO: the last holder of the PTY's child side closed it
                raise
            data = b""
        if data:
            self._show(self._filter.feed(data))
            self.flush_at = now + IDLE_FLUSH_SECONDS
        else:
            self.open = False
            self.flush()

    def flush(self) -> None:
        """Let out what the filter held back: a prompt without a newline must appear."""
        self.flush_at = None
        self._show(self._filter.flush())

    def _show(self, data: bytes) -> None:
        if not data or self._sink_gone:
            return
        try:
            _write_all(self._sink, data)
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.EIO):
                raise
            # Our reader left (or our terminal hung up): keep draining the child so it
            # is not blocked on a full pipe, and let it finish on its own terms.
            self._sink_gone = True


class _KeyboardRelay:
    """Our stdin → the PTY: keystrokes as they come, or piped input and then the
    terminal's end-of-file character, since a PTY has no other way to say "no more"."""

    def __init__(self, master: int, eof: bytes | None) -> None:
        self._master = master
        self._eof = eof  # None when stdin is a terminal: the user's own ^D passes as a key
        self._pending = b""
        self._reading = True
        self._mid_line = False

    def interest(self, wanted: dict[int, int]) -> None:
        if self._pending:
            wanted[self._master] = wanted.get(self._master, 0) | select.POLLOUT
        elif self._reading:  # one chunk at a time: a child that never reads slows us down
            wanted[0] = select.POLLIN

    def on_ready(self, ready: dict[int, int]) -> None:
        if ready.get(0):
            self._read()
        elif ready.get(self._master, 0) & select.POLLOUT:
            self._write()

    def _read(self) -> None:
        try:
            data = os.read(0, _CHUNK)
        except BlockingIOError:
            return
        except OSError:  # our terminal hung up, or there is no stdin at all
            data = b""
        if data:
            self._pending = data
            self._mid_line = not data.endswith(b"\n")
        else:
            self._reading = False
            if self._eof is not None:
                # In a line-editing terminal, EOF mid-line first hands over the partial
                # line; only a second one, at the start of a line, reads as end of input.
                self._pending = self._eof * (2 if self._mid_line else 1)
        self._write()

    def _write(self) -> None:
        try:
            sent = os.write(self._master, self._pending)
        except BlockingIOError:
            return
        except OSError:  # the child side is gone: nobody is left to read it
            self._pending, self._reading = b"", False
            return
        self._pending = self._pending[sent:]


class _PipeLink:
    """The child on pipes: stdin is ours, stdout and stderr are filtered separately."""

    keyboard = None
    resize = None

    def __init__(self, out_filter: OutputFilter, err_filter: OutputFilter) -> None:
        # When a shell gave us the terminal, the child stays in our process group: it may
        # read the terminal (a separate group would be stopped by SIGTTIN), and Ctrl-C,
        # Ctrl-Z and fg reach it from the terminal itself.
        self.shares_group = _foreground_of_stdin()
        self._fds: list[int] = []
        out_r, self._out_w = self._pipe()
        err_r, self._err_w = self._pipe()
        self.channels = [_Channel(out_r, 1, out_filter), _Channel(err_r, 2, err_filter)]

    def _pipe(self) -> tuple[int, int]:
        ends = os.pipe()
        self._fds.extend(ends)
        return ends

    def wire(self) -> None:
        """In the child, before exec."""
        if not self.shares_group:
            os.setpgid(0, 0)
        os.dup2(self._out_w, 1)
        os.dup2(self._err_w, 2)

    def attached(self) -> None:
        """In the parent, once the child runs: drop our copies of its ends, so its exit
        shows as EOF."""
        for fd in (self._out_w, self._err_w):
            os.close(fd)
            self._fds.remove(fd)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()


class _PtyLink:
    """The child on a new pseudo-terminal of its own: one output channel, our keys relayed."""

    shares_group = False  # it leads a session of its own

    def __init__(self, output_filter: OutputFilter) -> None:
        self._master, self._slave = os.openpty()
        self._saved_mode: list[Any] | None = None
        _copy_window_size(1, self._slave)
        eof = None if os.isatty(0) else termios.tcgetattr(self._slave)[6][termios.VEOF]
        self.channels = [_Channel(self._master, 1, output_filter)]
        self.keyboard = _KeyboardRelay(self._master, eof)

    def wire(self) -> None:
        """In the child: a new session, this PTY its controlling terminal and its stdio."""
        os.login_tty(self._slave)

    def attached(self) -> None:
        """In the parent, once the child runs: keys go through untouched (the child's
        terminal does the line editing and Ctrl-C), and its exit shows as EIO."""
        os.close(self._slave)
        self._slave = -1
        os.set_blocking(self._master, False)
        if os.isatty(0):
            self._saved_mode = termios.tcgetattr(0)
            tty.setraw(0, termios.TCSANOW)

    def resize(self) -> None:
        _copy_window_size(1, self._master)

    def close(self) -> None:
        if self._saved_mode is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, self._saved_mode)
            self._saved_mode = None
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1


class _SignalRelay:
    """While the child runs, signals asking "the command" to stop go to the child, and we
    keep running until it has exited, so its last words still pass the filter."""

    def __init__(self, pid: int, *, own_group: bool, resize: Callable[[], None] | None) -> None:
        self._pid = pid
        self._own_group = own_group
        self._resize = resize
        self._previous: dict[int, _Handler] = {}
        self._wake: tuple[int, int] | None = None
        self._previous_wakeup: int | None = None

    @property
    def wakeup_fd(self) -> int:
        """Readable after any signal we handle: ``poll`` must not sleep through one."""
        assert self._wake is not None
        return self._wake[0]

    def install(self) -> None:
        self._wake = os.pipe()
        for fd in self._wake:
            os.set_blocking(fd, False)
        self._previous_wakeup = signal.set_wakeup_fd(self._wake[1], warn_on_full_buffer=False)
        self._set(signal.SIGPIPE, signal.SIG_IGN)  # a reader gone shows as EPIPE, not death
        for signum in _STOP_REQUESTS:
            if self._own_group or signum == signal.SIGTERM:
                self._set(signum, self._forward)
            else:
                # Sharing the terminal's foreground group, the child got these from the
                # terminal itself; passing them on would deliver them twice.
                self._set(signum, signal.SIG_IGN)
        resize = self._resize
        if resize is not None:
            self._set(signal.SIGWINCH, lambda _signum, _frame: resize())

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()
        if self._previous_wakeup is not None:
            signal.set_wakeup_fd(self._previous_wakeup)
            self._previous_wakeup = None
        if self._wake is not None:
            for fd in self._wake:
                os.close(fd)
            self._wake = None

    def send(self, signum: int) -> None:
        try:
            if self._own_group:
                os.killpg(self._pid, signum)
            else:
                os.kill(self._pid, signum)
        except OSError:  # gone already, or no longer ours to signal (a setuid program)
            pass

    def _set(self, signum: int, handler: _Handler) -> None:
        self._previous[signum] = signal.signal(signum, handler)

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        self.send(signum)


def _pump(channels: list[_Channel], wakeup_fd: int, keyboard: _KeyboardRelay | None) -> None:
    """Move output until every channel has reached EOF, flushing those that went quiet."""
    while any(channel.open for channel in channels):
        wanted = {wakeup_fd: select.POLLIN}
        for channel in channels:
            if channel.open:
                wanted[channel.source] = select.POLLIN
        if keyboard is not None:
            keyboard.interest(wanted)
        poller = select.poll()
        for fd, events in wanted.items():
            poller.register(fd, events)
        deadlines = [channel.flush_at for channel in channels if channel.flush_at is not None]
        timeout = max(0.0, min(deadlines) - time.monotonic()) * 1000 if deadlines else None
        ready = dict(poller.poll(timeout))
        now = time.monotonic()
        if ready.get(wakeup_fd):
            os.read(wakeup_fd, 512)
        for channel in channels:
            if channel.open and ready.get(channel.source, 0) & ~select.POLLOUT:
                channel.read(now)
        if keyboard is not None:
            keyboard.on_ready(ready)
        for channel in channels:
            if channel.flush_at is not None and channel.flush_at <= now:
                channel.flush()
