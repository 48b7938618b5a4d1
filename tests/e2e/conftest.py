"""End-to-end helpers: the real app in a real terminal (tmux), driven by keystrokes.

``tmux`` gives the app a genuine pseudo-terminal of a fixed size. Each test gets a
private tmux server (its own socket name, ``-f /dev/null`` so no user configuration
applies), and the server is killed afterwards whatever happened. The screen is read
back with ``capture-pane``; every step waits for the screen to show its result
instead of sleeping for a fixed time, so a slow machine only makes the test slower.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

WIDTH, HEIGHT = 120, 40
EXIT_MARKER = "__AEGIS_APP_EXITED__"
# An SGR sequence that turns on reverse video (parameter 7): how a focused Button is drawn.
_REVERSE_SGR = r"\x1b\[(?:[0-9]+;)*7(?:;[0-9]+)*m"


class ScreenTimeout(AssertionError):
    pass


class Tmux:
    """One private tmux server with one session running one command."""

    def __init__(self, workdir: Path) -> None:
        self.socket = f"aegis-e2e-{os.getpid()}-{uuid.uuid4().hex[:10]}"
        self.workdir = workdir
        self.session = "app"
        self.env: dict[str, str] = {}
        self.socket_path = ""

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], env=self.env,
                              capture_output=True, text=True, timeout=30, check=check)

    def start(self, argv: list[str], env: dict[str, str]) -> None:
        """Run ``argv`` in a WIDTHxHEIGHT window; when it exits, the pane shows its exit code."""
        self.env = {**env, "TERM": "xterm-256color"}
        self.env.pop("TMUX", None)
        command = " ".join(shlex.quote(part) for part in argv)
        # The shell stays alive after the app exits so its exit code can be read off the screen.
        script = f'{command}; echo "{EXIT_MARKER} $?"; exec sleep 600'
        self._tmux("new-session", "-d", "-s", self.session, "-x", str(WIDTH), "-y", str(HEIGHT),
                   "-c", str(self.workdir), "sh", "-c", script)
        self.socket_path = self._tmux("display-message", "-p", "#{socket_path}").stdout.strip()

    def kill(self) -> None:
        if self.env:
            self._tmux("kill-server", check=False)
        if self.socket_path.endswith(self.socket):  # tmux leaves its socket file behind
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)

    # -- reading the screen ------------------------------------------------------------------
    def screen(self, *, escapes: bool = False) -> str:
        args = ["capture-pane", "-p", "-t", self.session]
        if escapes:
            args.append("-e")
        return self._tmux(*args).stdout

    def cursor(self) -> tuple[int, int]:
        out = self._tmux("display-message", "-p", "-t", self.session, "#{cursor_x} #{cursor_y}").stdout.split()
        return int(out[0]), int(out[1])

    def wait_for(self, predicate: Callable[[str], bool] | str, what: str = "", *, timeout: float = 30,
                 escapes: bool = False) -> str:
        """Poll the screen until ``predicate`` (or "this text is on screen") holds; return that screen."""
        check = (lambda screen: predicate in screen) if isinstance(predicate, str) else predicate
        description = what or (repr(predicate) if isinstance(predicate, str) else "condition")
        deadline = time.monotonic() + timeout
        screen = ""
        while True:
            screen = self.screen(escapes=escapes)
            if check(screen):
                return screen
            if time.monotonic() > deadline:
                plain = self.screen() if escapes else screen
                raise ScreenTimeout(f"timed out after {timeout}s waiting for {description}; screen:\n{plain}")
            time.sleep(0.1)

    def wait_until_gone(self, text: str, *, timeout: float = 30) -> str:
        return self.wait_for(lambda screen: text not in screen, f"{text!r} to disappear", timeout=timeout)

    def wait_for_focused_button(self, label: str, *, timeout: float = 15, steady: float = 0.3) -> str:
        """Wait until the Button labelled ``label`` is drawn focused (reverse video), and stays so.

        A new dialog can draw one frame with the default focus before its own ``focus()``
        call lands, so one matching capture is not enough: it must still match ``steady``
        seconds later.
        """
        pattern = re.compile(_REVERSE_SGR + r"(?:\x1b\[[0-9;]*m)*" + rf" {re.escape(label)} ")
        deadline = time.monotonic() + timeout
        while True:
            screen = self.wait_for(lambda s: bool(pattern.search(s)), f"the {label!r} button to have focus",
                                   timeout=max(0.1, deadline - time.monotonic()), escapes=True)
            time.sleep(steady)
            if pattern.search(self.screen(escapes=True)):
                return screen
            if time.monotonic() > deadline:
                raise ScreenTimeout(f"the {label!r} button did not keep the focus; screen:\n{self.screen()}")

    def wait_for_cursor_move(self, start: tuple[int, int], *, timeout: float = 15) -> tuple[int, int]:
        """The cursor's new resting place once it has left ``start``.

        Mid-repaint the terminal cursor passes through whatever cell was written last, so one
        changed sample can name a row no field is on; the position counts once three samples
        in a row agree.
        """
        deadline = time.monotonic() + timeout
        seen: list[tuple[int, int]] = []
        while True:
            now = self.cursor()
            seen = [*seen, now][-3:] if now != start else []
            if len(seen) == 3 and len(set(seen)) == 1:
                return now
            if time.monotonic() > deadline:
                raise ScreenTimeout(f"the cursor stayed at {start}; screen:\n{self.screen()}")
            time.sleep(0.05)

    # -- typing ---------------------------------------------------------------------------------
    def type(self, text: str) -> None:
        """Literal text: ``send-keys -l`` never interprets key names."""
        self._tmux("send-keys", "-t", self.session, "-l", text)

    def press(self, *keys: str) -> None:
        """Named keys, one at a time (Enter, Tab, BTab, C-s, ...)."""
        for key in keys:
            self._tmux("send-keys", "-t", self.session, key)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    session = Tmux(tmp_path)
    try:
        yield session
    finally:
        session.kill()


@pytest.fixture
def app_argv() -> list[str]:
    """``aegis-vault`` from the same environment as the test run."""
    script = Path(sys.executable).with_name("aegis-vault")
    return [str(script)] if script.exists() else [sys.executable, "-m", "aegis_tui"]
