"""``run_child``: real child processes, real pipes, real pseudo-terminals; nothing mocked.

Two ways in. Tests that only look at results call ``run_child`` here and read fds 1/2
through ``capfdbinary``. Tests that need a terminal, stdin, or signals sent to the
runner drive ``run_harness.py`` (a miniature ``aegis-vault run``) as a process: from
pipes, or inside a pseudo-terminal the test holds the other end of. Every wait is for an
event (a marker in the output, a process exit) with a generous timeout, never a sleep.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from aegis_tui.core.errors import UsageError
from aegis_tui.core.run.child import STDERR, STDOUT, ChildResult, exit_status, run_child
from run_harness import LineFilter

HERE = Path(__file__).resolve().parent
HARNESS = str(HERE / "run_harness.py")
PY = sys.executable
TIMEOUT = 20.0

# Both say "ready" and wait for a signal: the first has handlers in by then, reports the
# signal and exits 7; the second is killed by it.
TRAPS_SIGNALS = """
import signal, sys
def report(signum, frame):
    print("child got", signal.Signals(signum).name, flush=True)
    sys.exit(7)
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(s, report)
print("ready", flush=True)
while True:
    signal.pause()
"""
WAITS_FOR_A_SIGNAL = """
import signal
print("ready", flush=True)
while True:
    signal.pause()
"""
ASKS_A_NAME = "name = input('Name? '); print('hello', name)"


def run(argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> ChildResult:
    """``run_child`` on pipes, here in the test process: output lands in ``capfdbinary``."""
    env = dict(os.environ) if env is None else env
    return run_child(argv, env, filters=LineFilter, use_pty=False, cwd=cwd)


class Reader:
    """Collects what a descriptor yields: ``wait_for`` a marker, or the ``rest`` up to EOF."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.seen = b""
        self.ended = False

    def wait_for(self, marker: bytes) -> bytes:
        while marker not in self.seen:
            assert not self.ended, f"never saw {marker!r}; saw {self.seen!r}"
            self._read(f"never saw {marker!r}")
        return self.seen

    def rest(self) -> bytes:
        while not self.ended:
            self._read("no EOF")
        return self.seen

    def _read(self, what: str) -> None:
        assert select.select([self.fd], [], [], TIMEOUT)[0], f"{what} within {TIMEOUT} s; saw {self.seen!r}"
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the terminal's last user has gone
            data = b""
        self.seen += data
        self.ended = not data


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Leave nothing running when a test fails: SIGTERM first (forwarded, so the child
    goes too), SIGKILL if that does not do it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@contextmanager
def harness(command: list[str], **stdio: int) -> Iterator[subprocess.Popen[bytes]]:
    """``run_harness.py -- command`` as a process, its stdio as given."""
    proc = subprocess.Popen([PY, HARNESS, "--", *command], **stdio)
    try:
        yield proc
    finally:
        _stop(proc)


class Terminal:
    """A pseudo-terminal: the test holds the master (what a terminal emulator would see);
    the harness runs on the slave."""

    def __init__(self, rows: int, columns: int) -> None:
        self.master, self.slave = os.openpty()
        termios.tcsetwinsize(self.master, (rows, columns))
        self.screen = Reader(self.master)

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)


@contextmanager
def terminal(rows: int = 24, columns: int = 80) -> Iterator[Terminal]:
    term = Terminal(rows, columns)
    try:
        yield term
    finally:
        os.close(term.master)
        os.close(term.slave)


@contextmanager
def on_terminal(term: Terminal, command: list[str], **stdio: int) -> Iterator[subprocess.Popen[bytes]]:
    """The harness as session leader of ``term`` (as a login shell's job would be): the
    slave is its controlling terminal and, unless ``stdio`` says otherwise, its stdio."""
    streams = {"stdin": term.slave, "stdout": term.slave, "stderr": term.slave, **stdio}
    proc = subprocess.Popen([PY, HARNESS, "--", *command], start_new_session=True,
                            preexec_fn=lambda: fcntl.ioctl(term.slave, termios.TIOCSCTTY, 0), **streams)
    try:
        yield proc
    finally:
        _stop(proc)


# --- exit codes and signals -------------------------------------------------------


@pytest.mark.parametrize("code", [0, 3, 42])
def test_the_childs_exit_code_passes_through(code, capfdbinary):
    result = run(["sh", "-c", f"exit {code}"])
    assert (result.exit_code, result.signal) == (code, None)
    assert exit_status(result) == code


def test_a_child_killed_by_a_signal_reports_the_signal_and_no_exit_code(capfdbinary):
    result = run(["sh", "-c", "kill -TERM $$"])
    assert (result.exit_code, result.signal) == (None, signal.SIGTERM)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_exit_status_makes_the_runner_die_by_the_childs_signal(signum):
    with harness(["sh", "-c", f"kill -{signum.name[3:]} $$"], stdin=subprocess.DEVNULL) as proc:
        assert proc.wait(TIMEOUT) == -signum


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT])
def test_a_stop_signal_sent_to_the_runner_reaches_the_child_and_the_runner_waits_for_it(signum):
    with harness([PY, "-c", TRAPS_SIGNALS], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE) as proc:
        out = Reader(proc.stdout.fileno())
        out.wait_for(b"ready\n")
        proc.send_signal(signum)
        out.wait_for(f"child got {signum.name}\n".encode())
        assert proc.wait(TIMEOUT) == 7  # the child's code: the runner outlived the signal


# --- output -----------------------------------------------------------------------


def test_stdout_and_stderr_each_reach_their_own_fd_through_their_own_filter(capfdbinary):
    run(["sh", "-c", "echo out TOKEN; echo err TOKEN >&2"])
    captured = capfdbinary.readouterr()
    assert (captured.out, captured.err) == (b"out <out>\n", b"err <err>\n")


def test_each_channel_gets_one_filter_made_at_the_start(capfdbinary):
    made: list[int] = []

    def factory(channel: int) -> LineFilter:
        made.append(channel)
        return LineFilter(channel)

    run_child(["sh", "-c", "for i in 1 2 3; do echo $i; echo $i >&2; done"], dict(os.environ),
              filters=factory, use_pty=False)
    assert made == [STDOUT, STDERR]
    assert capfdbinary.readouterr() == (b"1\n2\n3\n", b"1\n2\n3\n")


LOTS = """
import sys
out, err = sys.stdout.buffer, sys.stderr.buffer
for block in range(0, 2_400_000, 20_000):
    out.write(b"".join(b"%08d\\n" % i for i in range(block, block + 20_000)))
    out.flush()
    err.write(b"e%08d\\n" % block)
    err.flush()
"""


def test_twenty_megabytes_on_both_channels_arrive_complete_and_in_order(capfdbinary):
    result = run([PY, "-c", LOTS])
    captured = capfdbinary.readouterr()
    assert result.exit_code == 0
    assert len(captured.out) == 2_400_000 * 9  # 21.6 MB
    assert captured.out == b"".join(b"%08d\n" % i for i in range(2_400_000))
    assert captured.err == b"".join(b"e%08d\n" % block for block in range(0, 2_400_000, 20_000))


def test_a_prompt_without_newline_is_shown_before_the_answer_is_typed():
    with harness([PY, "-c", ASKS_A_NAME], stdin=subprocess.PIPE, stdout=subprocess.PIPE) as proc:
        out = Reader(proc.stdout.fileno())
        assert out.wait_for(b"Name? ") == b"Name? "  # held by the filter: only the idle flush shows it
        proc.stdin.write(b"bob\n")
        proc.stdin.flush()
        assert out.rest() == b"Name? hello bob\n"
        assert proc.wait(TIMEOUT) == 0


def test_when_our_stdout_is_gone_the_child_is_still_drained_and_finishes():
    program = "import sys; print('first', flush=True); sys.stdout.write('x' * 2_000_000); sys.stdout.flush();" \
              " print('done', file=sys.stderr); sys.exit(5)"
    with harness([PY, "-c", program], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE) as proc:
        Reader(proc.stdout.fileno()).wait_for(b"first\n")
        proc.stdout.close()  # the agent stopped reading: EPIPE from now on
        err = Reader(proc.stderr.fileno()).rest()
        assert proc.wait(TIMEOUT) == 5
        assert err == b"done\n"


class BrokenFilter(LineFilter):
    def feed(self, data: bytes) -> bytes:
        raise RuntimeError("the masker failed")


def test_when_the_filter_fails_the_child_is_killed_and_the_error_raised(capfdbinary):
    # Without the kill, the child would wait for a signal forever (and so would we).
    with pytest.raises(RuntimeError, match="the masker failed"):
        run_child([PY, "-c", WAITS_FOR_A_SIGNAL], dict(os.environ), filters=BrokenFilter, use_pty=False)
    assert capfdbinary.readouterr() == (b"", b"")


# --- what the child gets ------------------------------------------------------------


def test_the_child_sees_exactly_the_environment_given(capfdbinary):
    env = {"PATH": "/usr/bin:/bin", "AEGIS_PROBE": "a value\nwith a newline and spaces", "EMPTY": ""}
    run(["env", "-0"], env)
    printed = capfdbinary.readouterr().out
    assert dict(line.split("=", 1) for line in printed.decode().split("\0") if line) == env


OPEN_FDS = """
import os
fds = []
for name in os.listdir("/proc/self/fd"):
    try:
        os.fstat(int(name))  # the listing's own descriptor is closed by now
        fds.append(int(name))
    except OSError:
        pass
print(sorted(fds))
"""


def test_the_child_inherits_no_descriptor_beyond_stdio_even_an_inheritable_one(capfdbinary, tmp_path):
    stray = os.open(tmp_path / "stray", os.O_CREAT | os.O_WRONLY)
    os.set_inheritable(stray, True)
    try:
        run([PY, "-c", OPEN_FDS])
    finally:
        os.close(stray)
    assert capfdbinary.readouterr().out == b"[0, 1, 2]\n"


def test_the_command_is_looked_up_on_the_childs_path_not_ours(capfdbinary, tmp_path):
    tool = tmp_path / "aegis-probe-tool"
    tool.write_text("#!/bin/sh\necho found on the PATH given\n")
    tool.chmod(0o755)
    assert str(tmp_path) not in os.environ["PATH"]
    run(["aegis-probe-tool"], {"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert capfdbinary.readouterr().out == b"found on the PATH given\n"


def test_the_child_runs_in_the_directory_given(capfdbinary, tmp_path):
    (tmp_path / "here.sh").write_text("#!/bin/sh\npwd\n")
    (tmp_path / "here.sh").chmod(0o755)
    run(["./here.sh"], cwd=str(tmp_path))  # a relative command is relative to that directory too
    assert capfdbinary.readouterr().out == f"{tmp_path}\n".encode()


def _no_filter_wanted(channel: int) -> LineFilter:
    raise AssertionError("nothing may start")


@pytest.mark.parametrize("command", ["aegis-no-such-command", "./no-such-file", "/nonexistent/tool"])
def test_an_unknown_command_is_a_usage_error_and_nothing_starts(command):
    with pytest.raises(UsageError, match=f"^command not found: {command}$"):
        run_child([command], {"PATH": "/usr/bin:/bin"}, filters=_no_filter_wanted, use_pty=False)


def test_a_file_that_is_not_executable_is_a_usage_error_and_nothing_starts(tmp_path):
    (tmp_path / "notes.txt").write_text("not a program\n")
    with pytest.raises(UsageError, match="^command is not an executable file: notes.txt$"):
        run_child(["notes.txt"], {"PATH": str(tmp_path)}, filters=_no_filter_wanted, use_pty=False)


def test_a_directory_that_cannot_be_entered_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="^cannot change to directory .*/missing: No such file or directory$"):
        run(["true"], cwd=str(tmp_path / "missing"))


def test_no_command_at_all_is_a_usage_error():
    with pytest.raises(UsageError, match="^no command given$"):
        run([])


# --- on a pseudo-terminal -------------------------------------------------------------

SEES_A_TERMINAL = r"""
import os, sys
os.close(os.open("/dev/tty", os.O_RDWR))  # a controlling terminal, not only a tty on stdio
print("terminal:", sys.stdin.isatty(), sys.stdout.isatty(), sys.stderr.isatty())
print("\x1b[31mred\x1b[0m TOKEN")
"""


def test_on_a_terminal_the_child_gets_a_terminal_and_its_colours_arrive_intact():
    with terminal() as term, on_terminal(term, [PY, "-c", SEES_A_TERMINAL]) as proc:
        screen = term.screen.wait_for(b"\x1b[0m <out>")
        assert proc.wait(TIMEOUT) == 0
    assert b"terminal: True True True" in screen
    assert b"\x1b[31mred\x1b[0m <out>" in screen  # through the filter, escape codes untouched


def test_on_a_terminal_an_interactive_prompt_works():
    with terminal() as term, on_terminal(term, [PY, "-c", ASKS_A_NAME]) as proc:
        term.screen.wait_for(b"Name? ")
        term.type(b"bob\r")  # Enter, as a terminal sends it
        term.screen.wait_for(b"hello bob")
        assert proc.wait(TIMEOUT) == 0


FOLLOWS_THE_WINDOW = """
import os, signal, sys
def resized(signum, frame):
    size = os.get_terminal_size()
    print(f"resized to {size.columns}x{size.lines}", flush=True)
    sys.exit(0)
signal.signal(signal.SIGWINCH, resized)
size = os.get_terminal_size()
print(f"started at {size.columns}x{size.lines}", flush=True)
while True:
    signal.pause()
"""


def test_on_a_terminal_the_child_sees_our_window_size_and_its_changes():
    with terminal(rows=33, columns=101) as term, on_terminal(term, [PY, "-c", FOLLOWS_THE_WINDOW]) as proc:
        term.screen.wait_for(b"started at 101x33")
        termios.tcsetwinsize(term.master, (40, 120))  # the user resizes the window
        term.screen.wait_for(b"resized to 120x40")
        assert proc.wait(TIMEOUT) == 0


def test_on_a_terminal_our_terminal_is_raw_during_the_run_and_restored_after():
    with terminal() as term:
        before = termios.tcgetattr(term.slave)
        with on_terminal(term, [PY, "-c", ASKS_A_NAME]) as proc:
            term.screen.wait_for(b"Name? ")
            during = termios.tcgetattr(term.slave)
            term.type(b"bob\r")
            assert proc.wait(TIMEOUT) == 0
        after = termios.tcgetattr(term.slave)
    assert not during[3] & (termios.ICANON | termios.ECHO)  # keys went to the child untouched
    assert after == before


def test_on_a_terminal_the_mode_is_restored_when_a_signal_ends_the_run():
    with terminal() as term:
        before = termios.tcgetattr(term.slave)
        with on_terminal(term, [PY, "-c", WAITS_FOR_A_SIGNAL]) as proc:
            term.screen.wait_for(b"ready")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(TIMEOUT) == -signal.SIGTERM  # the child died of it, so did we
        assert termios.tcgetattr(term.slave) == before


@pytest.mark.parametrize("piped", [b"bob\n", b"bob"])
def test_on_a_terminal_piped_input_reaches_the_child_and_then_ends(piped):
    program = "import sys; print('got', repr(sys.stdin.read()))"
    with terminal() as term, on_terminal(term, [PY, "-c", program], stdin=subprocess.PIPE) as proc:
        proc.stdin.write(piped)
        proc.stdin.close()
        term.screen.wait_for(b"got 'bob")
        assert proc.wait(TIMEOUT) == 0
    assert f"got {piped.decode()!r}".encode() in term.screen.seen


def test_on_a_terminal_the_childs_exit_code_passes_through():
    with terminal() as term, on_terminal(term, ["sh", "-c", "exit 42"]) as proc:
        assert proc.wait(TIMEOUT) == 42


# --- stdin is a terminal, stdout is not (`aegis-vault run -- cmd | tee log`) -------------


def test_with_output_piped_the_child_can_still_read_the_terminal():
    program = "import sys; print('Name?', flush=True); print('hello', sys.stdin.readline().strip())"
    with terminal() as term, on_terminal(term, [PY, "-c", program], stdout=subprocess.PIPE) as proc:
        out = Reader(proc.stdout.fileno())
        out.wait_for(b"Name?\n")
        term.type(b"bob\n")
        assert out.rest() == b"Name?\nhello bob\n"
        assert proc.wait(TIMEOUT) == 0


def test_with_output_piped_ctrl_c_reaches_the_child_and_the_runner_waits_for_it():
    with terminal() as term, on_terminal(term, [PY, "-c", TRAPS_SIGNALS], stdout=subprocess.PIPE) as proc:
        out = Reader(proc.stdout.fileno())
        out.wait_for(b"ready\n")
        term.type(b"\x03")
        assert out.rest() == b"ready\nchild got SIGINT\n"
        assert proc.wait(TIMEOUT) == 7
