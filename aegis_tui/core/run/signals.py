"""While someone else runs our command (the broker, for ``run`` in a sandboxed session):
pass the signals meant for the command on, and leave the terminal as we found it.

The child is not ours, so the usual relay (``child._SignalRelay``) cannot reach it: each
signal becomes a message to the broker instead. The runner puts our terminal in raw mode
while its child has a PTY and restores it when done; should it be killed first, the
mode saved here is put back. Plain ``_signal`` and ``termios``: this is on ``run``'s path.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if not TYPE_CHECKING:
    import _signal as signal
else:
    import signal
    from collections.abc import Callable
    from typing import Any

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGWINCH)


class forwarded_signals:  # noqa: N801 - used as a context manager, like contextlib's
    """``with forwarded_signals(send):`` each of ``FORWARDED`` calls ``send(signum)``."""

    def __init__(self, send: Callable[[int], object]) -> None:
        self._send = send
        self._previous: dict[int, Any] = {}
        self._terminal: list[Any] | None = None

    def _handle(self, signum: int, _frame: object) -> None:
        try:
            self._send(signum)
        except Exception:  # noqa: BLE001 - the broker went away: its answer will say so
            pass

    def __enter__(self) -> forwarded_signals:
        if os.isatty(0):
            import termios

            try:
                self._terminal = termios.tcgetattr(0)
            except termios.error:
                self._terminal = None
        for signum in FORWARDED:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()
        if self._terminal is not None:
            import termios

            try:
                termios.tcsetattr(0, termios.TCSADRAIN, self._terminal)
            except termios.error:
                pass
