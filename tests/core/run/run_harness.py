"""A miniature ``aegis-vault run`` for the tests: ``run_child`` with the CLI's choices.

    run_harness.py -- COMMAND [ARG...]

Runs COMMAND with our environment, on a PTY when our stdout is a terminal and on pipes
otherwise (``should_use_pty``), through ``LineFilter``; exits with ``exit_status``. The
tests drive it as a real process: from pipes, or inside a pseudo-terminal whose other
end they hold, which is the only way to make ``should_use_pty()`` true.
"""

from __future__ import annotations

import os
import sys

from aegis_tui.core.run.child import STDOUT, exit_status, run_child, should_use_pty


class LineFilter:
    """Passes whole lines and holds a line's unfinished tail until ``flush``, as a masker
    holds back what may be the start of a secret: a prompt then shows only through the
    idle flush. ``TOKEN`` becomes the channel's tag, so each channel's own filter shows."""

    def __init__(self, channel: int) -> None:
        self.tag = b"<out>" if channel == STDOUT else b"<err>"
        self.held = b""

    def feed(self, data: bytes) -> bytes:
        data = self.held + data
        cut = data.rfind(b"\n") + 1
        self.held = data[cut:]
        return data[:cut].replace(b"TOKEN", self.tag)

    def flush(self) -> bytes:
        data, self.held = self.held, b""
        return data.replace(b"TOKEN", self.tag)


def main(args: list[str]) -> int:
    if args[:1] != ["--"]:
        raise SystemExit(__doc__)
    result = run_child(args[1:], dict(os.environ), filters=LineFilter, use_pty=should_use_pty())
    return exit_status(result)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
