"""``aegis-vault run`` on a terminal: the child gets a PTY, so colours and prompts keep
working, and what it prints is still masked.

The test plays the terminal emulator: it holds the master side of a real pseudo-terminal
and runs ``aegis-vault run`` as the session leader on the slave, like a shell's job.
"""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
import termios
from pathlib import Path

TIMEOUT = 30.0
VALUE = "ghp_PtyCanary0123456789abcdefXYZ"

CHILD = r"""
import os, sys
print("tty:", sys.stdin.isatty(), sys.stdout.isatty())
print("\x1b[31mred\x1b[0m and \x1b[1;32mbold green\x1b[0m")
name = input("Your name? ")
print("hello", name, "token", os.environ["GH"])
"""


class Screen:
    """What a terminal emulator would receive on the master side."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.seen = b""

    def wait_for(self, marker: bytes) -> bool:
        while marker not in self.seen:
            ready, _, _ = select.select([self.fd], [], [], TIMEOUT)
            if not ready:
                return False
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the slave side is gone
                return False
            if not chunk:
                return False
            self.seen += chunk
        return True


def test_colours_and_an_interactive_prompt_survive_run_on_a_terminal_and_the_value_is_masked(env_vault, home: Path):
    added = env_vault("add", "gh", input=VALUE)
    assert added.returncode == 0, added.err
    master, slave = os.openpty()
    termios.tcsetwinsize(master, (30, 100))
    env = {**env_vault.env, "TERM": "xterm-256color"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aegis_tui", "run", "--need", "gh=GH", "--", sys.executable, "-c", CHILD],
        stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(slave, termios.TIOCSCTTY, 0),
    )
    os.close(slave)
    screen = Screen(master)
    try:
        assert screen.wait_for(b"Your name? "), "the prompt (no newline) never reached the terminal"
        assert b"tty: True True" in screen.seen
        assert b"\x1b[31mred\x1b[0m" in screen.seen and b"\x1b[1;32mbold green\x1b[0m" in screen.seen
        os.write(master, b"Ada\r")
        assert screen.wait_for(b"hello Ada token [aegis:gh]")
        assert proc.wait(TIMEOUT) == 0
        screen.wait_for(b"\x00never")  # drain until the slave side closes
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert VALUE.encode() not in screen.seen
