"""Reading secrets from a person or a pipe, never from argv.

A hidden prompt goes to the controlling terminal (``/dev/tty``), so a command can read
its value from a pipe and still ask for the passphrase. Without a terminal nothing is
prompted: the command fails with a message naming the non-interactive ways in.
"""

from __future__ import annotations

import os
import sys

from aegis_tui.core.errors import UsageError
from aegis_tui.core.secret import Secret


class _terminal:  # noqa: N801 - used as ``with _terminal() as fd``, like the function it replaced
    """The controlling terminal opened for one exchange, or ``None`` without one. A class
    rather than ``contextlib.contextmanager``, whose import costs every ``run`` ~2 ms."""

    def __enter__(self) -> int | None:
        try:
            self._fd: int | None = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
        except OSError:
            self._fd = None
        return self._fd

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            os.close(self._fd)


def has_terminal() -> bool:
    with _terminal() as fd:
        return fd is not None


def prompt_hidden(prompt: str) -> Secret | None:
    """Ask on the terminal with echo off; ``None`` when there is no terminal."""
    import termios

    with _terminal() as fd:
        if fd is None:
            return None
        os.write(fd, prompt.encode())
        old = termios.tcgetattr(fd)
        new = termios.tcgetattr(fd)
        new[3] &= ~termios.ECHO
        try:
            termios.tcsetattr(fd, termios.TCSAFLUSH, new)
            line = _read_line(fd)
        finally:
            termios.tcsetattr(fd, termios.TCSAFLUSH, old)
            os.write(fd, b"\n")
        return Secret(line)


def prompt_line(prompt: str) -> str | None:
    """A visible one-line answer from the terminal (confirmations)."""
    with _terminal() as fd:
        if fd is None:
            return None
        os.write(fd, prompt.encode())
        return _read_line(fd).decode(errors="replace").strip()


def _read_line(fd: int) -> bytes:
    chunks = bytearray()
    while True:
        byte = os.read(fd, 1)
        if not byte or byte == b"\n":
            return bytes(chunks).rstrip(b"\r")
        chunks += byte


def prompt_new_secret(what: str) -> Secret | None:
    """Ask twice; refuse a mismatch or an empty answer."""
    first = prompt_hidden(f"{what}: ")
    if first is None:
        return None
    second = prompt_hidden(f"{what} again: ")
    if second is None or first != second:
        raise UsageError(f"the two {what}s did not match; nothing was changed")
    if not len(first):
        raise UsageError(f"the {what} is empty; nothing was changed")
    return first


def stdin_is_terminal() -> bool:
    return sys.stdin is not None and not sys.stdin.closed and sys.stdin.isatty()


def read_stdin_secret(what: str) -> Secret:
    """The whole of stdin as one value; one trailing newline of a one-line value is dropped."""
    if sys.stdin is None:
        raise UsageError(f"stdin is closed; pipe the {what} in or run in a terminal")
    from aegis_tui.core.models import MAX_VALUE_BYTES

    try:
        data = sys.stdin.buffer.read(MAX_VALUE_BYTES + 2)
    except (OSError, ValueError):
        raise UsageError(f"stdin is closed; pipe the {what} in or run in a terminal") from None
    if len(data) > MAX_VALUE_BYTES + 1:
        raise UsageError(f"the {what} is larger than {MAX_VALUE_BYTES // (1024 * 1024)} MiB")
    if data.endswith(b"\n") and data.count(b"\n") == 1:
        data = data[:-1].rstrip(b"\r")
    if not data:
        raise UsageError(f"the {what} on stdin is empty; nothing was changed")
    return Secret(data)


def read_fd_line(fd: int, what: str) -> Secret:
    """First line from an inherited file descriptor (``--passphrase-fd``, like gpg)."""
    try:
        with os.fdopen(os.dup(fd), "rb") as stream:
            line = stream.readline()
    except OSError:
        raise UsageError(f"cannot read the {what} from file descriptor {fd}") from None
    line = line.rstrip(b"\n").rstrip(b"\r")
    if not line:
        raise UsageError(f"the {what} from file descriptor {fd} is empty")
    return Secret(line)


def read_value(what: str = "secret value") -> Secret:
    """A credential value: from stdin when piped, else a hidden prompt asked twice."""
    if not stdin_is_terminal():
        return read_stdin_secret(what)
    value = prompt_new_secret(what)
    if value is None:
        raise UsageError(f"no terminal to ask for the {what}; pipe it on stdin")
    return value


def confirm(question: str, expected: str = "y") -> bool:
    answer = prompt_line(question)
    return answer is not None and answer.casefold() == expected.casefold()


def err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()
