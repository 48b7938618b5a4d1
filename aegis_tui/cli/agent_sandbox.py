"""``session exec``'s sandbox choices, said plainly: whether the agent is contained,
what ``--explain`` prints, and passing the terminal's signals to a contained agent.

Containment is the default wherever it works (Linux with a usable bubblewrap). Where it
does not, the agent still runs, after one line saying what that means, unless the user
asked ``--require-sandbox``; and turning it off on purpose (``--no-sandbox``) is said on
stderr and written to the audit log, so nobody mistakes an uncontained session for one.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING

from aegis_tui.cli.terminal import err
from aegis_tui.core.errors import UsageError

if TYPE_CHECKING:
    import argparse

    from aegis_tui.core.sandbox.plan import SandboxPlan

CONTAINMENT_OFF = ("containment is off: the agent runs as an ordinary process of yours and can read what you can "
                   "(the vault file, the keyring, your other processes' memory); the broker's grants still decide "
                   "what it is given when it asks")
NO_BWRAP = "no usable bubblewrap (bwrap) here: it is missing, or user namespaces are off"


def usable_bwrap(args: argparse.Namespace) -> str | None:
    """The bwrap to contain the agent with, or None to run it as before (after saying
    so). ``--require-sandbox`` without one is a ``UsageError``: nothing is started."""
    if args.no_sandbox:
        err(f"aegis-vault: running the agent without a sandbox (--no-sandbox); {CONTAINMENT_OFF}; "
            "this is recorded in the audit log")
        return None
    from aegis_tui.core.sandbox.bwrap import find_bwrap

    bwrap = find_bwrap() if sys.platform.startswith("linux") else None
    if bwrap is None:
        if args.require_sandbox:
            raise UsageError(f"--require-sandbox: {NO_BWRAP}; install bubblewrap to contain the agent; "
                             "nothing was started")
        err(f"aegis-vault: {NO_BWRAP}, so {CONTAINMENT_OFF}; install bubblewrap, or pass --require-sandbox "
            "to refuse instead")
    return bwrap


def make_plan(args: argparse.Namespace) -> SandboxPlan:
    from aegis_tui.core.paths import vault_path
    from aegis_tui.core.sandbox.plan import plan_sandbox

    return plan_sandbox(vault_path=vault_path(), project_dir=os.getcwd(), network=args.network)


def explain(plan: SandboxPlan, bwrap: str | None) -> str:
    """What ``--explain`` prints: every hidden and read-only path with its reason, the
    network, the bus, and what no plan can hide."""
    from aegis_tui.core.sandbox.plan import BUS_NOTE

    width = max((len(path) for path, _ in plan.hidden + plan.read_only), default=0)
    lines = [f"The agent's sandbox ({'bubblewrap: ' + bwrap if bwrap else NO_BWRAP + '; ' + CONTAINMENT_OFF}):",
             "", "Hidden (an empty folder or an empty file in its place):"]
    lines += [f"  {path.ljust(width)}  {why}" for path, why in plan.hidden]
    lines += ["", "Read-only:"] + [f"  {path.ljust(width)}  {why}" for path, why in plan.read_only]
    network = ("none: a network namespace of its own, no connection out (not even to this machine)"
               if plan.network == "none" else "host: unchanged (--network none cuts it)")
    lines += ["", f"Network: {network}",
              f"D-Bus: the session bus socket is hidden and DBUS_SESSION_BUS_ADDRESS is unset; {BUS_NOTE}",
              "Processes: a PID namespace of its own: the agent sees only what it started",
              "Environment: no AEGIS_* variable; the agent reaches the broker only through its session's own socket",
              "Terminal: a new session (no controlling terminal) and no new privileges",
              "Everything else in your home and the project stays as it is.",
              "Change it in ~/.config/aegis-vault/sandbox.toml: hide = [...], read_only = [...], allow = [...]"]
    return "\n".join(lines) + "\n"


# The terminal sends these to its foreground process group; a contained agent is in a
# session of its own and gets them only from us, as the terminal would send them.
TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGWINCH)
PASSED_ON = (signal.SIGTERM, signal.SIGHUP)


class AgentSignals:
    """What ``session exec`` does with the signals it gets while the agent runs.

    Uncontained, the agent shares the terminal with us and gets ^C, ^\\ and window
    changes itself: we only note them (a handler, not "ignore", which the agent would
    inherit). Contained, we pass them to the agent's process group. SIGTERM and SIGHUP
    go to the agent either way. Signals that arrive before the agent is known wait."""

    def __init__(self, contained: bool) -> None:
        self.contained = contained
        self.agent: int | None = None
        self.pending: list[int] = []
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        self._previous = {signum: signal.signal(signum, self._handle) for signum in TERMINAL_SIGNALS + PASSED_ON}

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def aim(self, agent: int | None) -> None:
        """The agent is ``agent`` from now on (None: it is already gone)."""
        self.agent = agent
        pending, self.pending = self.pending, []
        for signum in pending:
            self._send(signum)

    def _handle(self, signum: int, _frame: object) -> None:
        if signum in TERMINAL_SIGNALS and not self.contained:
            return
        if self.agent is None:
            self.pending.append(signum)
        else:
            self._send(signum)

    def _send(self, signum: int) -> None:
        if self.agent is None:
            return
        try:
            if signum in TERMINAL_SIGNALS:
                os.killpg(os.getpgid(self.agent), signum)
            else:
                os.kill(self.agent, signum)
        except (ProcessLookupError, PermissionError):
            pass  # it has gone; the wait sees it
