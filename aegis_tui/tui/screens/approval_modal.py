"""An agent's access request, answered by the person at the keyboard.

This dialog is the only place a request is approved: the requesting side never gets a
prompt. It tells the truth in two parts: what the broker verified from the kernel (the
process chain with executable paths, the exact command that would receive the value,
the folder, whether the session is bound) and what the agent claims (its reason, the
scopes, the session's label, "via"), marked as such. Every string in either part is
drawn literally (``approvals.literal``): control, bidi and zero-width characters show as
visible symbols, so nothing can repaint the dialog, set the title or write the clipboard.

Deny has the focus and Escape denies; unanswered, the request denies itself when the
countdown runs out. No key (and no click) does anything until the dialog has been on top
for ``ARM_SECONDS`` and the key before it came ``QUIET_SECONDS`` earlier: digits someone
was typing into another field when the request appeared never approve it, and an "e" or
a "b" typed for something else neither opens the scope field nor changes the binding.
The guard runs on ``time.monotonic``, not the app's clock: that one is wall time, which
can jump, and tests and snapshots freeze it.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, cast

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from aegis_tui.core.agents.grants import validate_scopes
from aegis_tui.core.approvals import Decision, PendingRequest, literal
from aegis_tui.core.processes import PeerInfo
from aegis_tui.core.errors import UsageError
from aegis_tui.tui.broker_host import Approvals
from aegis_tui.tui.when import clock_time, countdown

if TYPE_CHECKING:
    from aegis_tui.tui.app import AegisApp

Part = str | tuple[str, str]
_ANCESTORS_SHOWN = 3
_SHORT_SCREEN = 40  # rows: below this the details scroll sooner, so the buttons always show


class Choice(NamedTuple):
    decision: Decision
    said: str  # the end of "allowed NAME ..."


CHOICES = {
    "once": Choice(Decision(True, uses=1), "once"),
    "15min": Choice(Decision(True, ttl_seconds=900), "for 15 min"),
    "hour": Choice(Decision(True, ttl_seconds=3600), "for 1 hour"),
    "session": Choice(Decision(True, for_session=True), "for this agent session"),
}


def home_relative(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if home != "/" and path.startswith(home + os.sep) else path


def duration_words(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" + ("s" if count > 1 and unit != "min" else "")
    return f"{seconds} s"


def process_parts(peer: PeerInfo) -> list[Part]:
    """``/usr/bin/node (pid 4121) ← /usr/bin/zsh ← …``: the asker's executable, then its
    parents'; executables, not the names a process can give itself."""
    if not peer.chain:
        return [(literal(peer.exe or f"pid {peer.pid}", 200), "bold"), (f" (pid {peer.pid})", "$text-muted")]
    first, *parents = peer.chain
    parts: list[Part] = [(literal(_exe_of(first.exe, first.name), 200), "bold"), (f" (pid {first.pid})", "$text-muted")]
    for process in parents[:_ANCESTORS_SHOWN]:
        parts += [(" ← ", "$text-muted"), literal(_exe_of(process.exe, process.name), 120)]
    if len(parents) > _ANCESTORS_SHOWN:
        parts.append((" ← …", "$text-muted"))
    return parts


def _exe_of(exe: str, name: str) -> str:
    """The executable's path; the process's own name only when the kernel hid the path."""
    return home_relative(exe) if exe and exe != "?" else f"{name} (executable hidden)"


def command_text(command: Sequence[str]) -> str:
    """The argv as a shell would need it typed, each word made literal."""
    return literal(" ".join(shlex.quote(word) for word in command), 400)


BINDINGS_OFFERED = {"argv": "this exact command line", "program": "this program, any arguments",
                    "any": "any command"}


class ApprovalModal(ModalScreen[int | None]):
    """Dismissed with the request's id once answered, or ``None`` when it went away unanswered."""

    BINDINGS = [
        Binding("escape,d", "deny", "Deny", id="approval.deny", tooltip="Refuse this request"),
        Binding("1", "allow('once')", "Once", id="approval.once", tooltip="Allow this one use"),
        Binding("2", "allow('15min')", "15 min", id="approval.15min", tooltip="Allow for 15 minutes"),
        Binding("3", "allow('hour')", "1 hour", id="approval.hour", tooltip="Allow for an hour"),
        Binding("4", "allow('session')", "Session", id="approval.session",
                tooltip="Allow until the agent's session ends"),
        Binding("e", "edit_scope", "Edit scope", id="approval.scope", tooltip="Change the scopes granted"),
        Binding("b", "cycle_binding", "Bind", id="approval.bind",
                tooltip="What the grant is bound to: this command line, this program, or any command"),
    ]
    ARM_SECONDS = 1.0  # the dialog must have been on top this long before a key counts
    QUIET_SECONDS = 0.5  # and the key before must be this much older: no typing runs into it

    def __init__(self, approvals: Approvals, request: PendingRequest, waiting: int) -> None:
        super().__init__()
        self.approvals = approvals
        self.request = request
        self._waiting = waiting
        self._finished = False
        self._shown_at = float("inf")  # when it last came on top (``on_screen_resume``)
        self._last_key = float("-inf")  # when the last key came
        self._last_key_counts = False  # whether that key may answer (see ``armed``)
        self._binding = "argv" if request.right == "inject" and request.command else "any"

    @property
    def aegis(self) -> AegisApp:
        return cast("AegisApp", self.app)

    # -- layout ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Vertical(id="approval-dialog", classes="dialog"):
            with VerticalScroll(id="approval-details"):
                for key, label, parts in self._rows():
                    if not key:
                        yield Static(Content.assemble(*parts), classes="approval-heading")
                        continue
                    with Horizontal(classes="approval-row"):
                        yield Static(label, classes="approval-label")
                        yield Static(Content.assemble(*parts), classes="approval-value", id=f"approval-row-{key}")
            yield Input(placeholder="scopes, space or comma separated (empty: as asked)", id="approval-scope",
                        compact=True)
            yield Static(id="approval-error")
            with Horizontal(id="approval-buttons", classes="dialog-buttons"):
                yield Button("Deny", variant="error", id="approval-deny", compact=True)
                yield Button("1 Once", id="approval-once", compact=True)
                yield Button("2 15 min", id="approval-15min", compact=True)
                yield Button("3 1 hour", id="approval-hour", compact=True)
                yield Button("4 Session", id="approval-session", compact=True,
                             disabled=self.request.session is None)
            binds = " · b bind" if self._can_bind else ""
            yield Static(Content.styled(f"d or esc deny · e edit scope{binds} · tab next", "$text-muted"),
                         id="approval-keys")

    def _rows(self) -> list[tuple[str, str, list[Part]]]:
        """(id, label, text) of each line; an empty id is a section heading. First what is
        being decided (so it shows at 80x24 without scrolling), then what the broker
        verified, then what the agent claims."""
        r = self.request
        now = self.aegis.clock()
        c = r.credential
        wants: list[Part] = [(literal(c.name, 120), "bold"), ("  (", "$text-muted"),
                             literal(c.service, 80) or "no service", (" · ", "$text-muted"), str(c.kind),
                             (" · ", "$text-muted"), literal(c.context, 120) or "no context", (")", "$text-muted")]
        for warning in r.warnings:
            wants += [("  ⚠ ", "$error"), (literal(warning, 80), "bold $error")]
        rows: list[tuple[str, str, list[Part]]] = [("wants", "wants", wants), ("right", "would", self._right_parts())]
        if self._can_bind:
            rows.append(("bind", "grant for", self._bind_parts()))
        if r.outside_project:
            rows.append(("project", "project", [(f"outside this project's context ({literal(r.outside_project, 120)})",
                                                  "bold $error")]))
        rows.append(("", "", [("⟨verified⟩ ", "bold $success"), ("what the broker read from the kernel", "$text-muted")]))
        rows.append(("from", "from", process_parts(r.peer)))
        if r.peer.cmdline and tuple(r.peer.cmdline) != tuple(r.command):
            rows.append(("runs", "runs", [command_text(r.peer.cmdline)]))
        if r.command:
            rows.append(("command", "command", [(command_text(r.command), "bold")]))
            rows.append(("program", "program", [literal(r.program, 300) or ("(not resolved)", "$warning")]))
        if r.peer.cwd:
            rows.append(("folder", "folder", [literal(home_relative(r.peer.cwd), 300)]))
        if r.session is None:
            session: list[Part] = [("none: this applies to every request made outside a session", "$warning")]
        else:
            s = r.session
            session = [s.id, (" · ", "$text-muted"), literal(s.context, 120) or "all contexts",
                       (" · bound to its process tree" if r.bound else " · not bound: anyone holding its token",
                        "$text-muted" if r.bound else "$warning"),
                       (f" · ends {clock_time(s.expires_at, now)}", "$text-muted")]
        rows.append(("session", "session", session))
        rows.append(("sandbox", "sandbox", self._sandbox_parts()))
        rows.append(("", "", [("⟨agent says⟩ ", "bold $warning"), ("its claims, not checked", "$text-muted")]))
        rows.append(("reason", "reason", [literal(r.reason) if r.reason else ("(no reason given)", "$text-muted")]))
        rows.append(("via", "via", [literal(r.via, 200)]))
        rows.append(("scope", "scope", [literal(" ".join(r.scopes), 300)] if r.scopes
                     else [("any (none named)", "$text-muted")]))
        if r.session is not None and r.session.label:
            rows.append(("label", "label", [literal(r.session.label, 120)]))
        if r.duration:
            rows.append(("asks", "asks", [f"for {duration_words(r.duration)}"]))
        return rows

    def _sandbox_parts(self) -> list[Part]:
        """Whether what asks is contained: a sandboxed agent cannot reach the vault file,
        the keyring or the processes that hold values; any other caller can, as your user."""
        if self.request.sandboxed:
            return [("✓ sandboxed", "bold $success"),
                    (" · the vault, keyring and other processes are out of its reach", "$text-muted")]
        return [("✗ not sandboxed", "bold $warning"),
                (" · it runs as your user and can reach what you can", "$text-muted")]

    @property
    def _said_name(self) -> str:
        """The credential's name as the toasts say it: literal, like everything drawn here."""
        return literal(self.request.credential.name, 120)

    @property
    def _can_bind(self) -> bool:
        """A grant can be bound to a command only when the value goes into one."""
        return self.request.right == "inject" and bool(self.request.command)

    def _bind_parts(self) -> list[Part]:
        return [(BINDINGS_OFFERED[self._binding], "bold" if self._binding == "argv" else "bold $warning"),
                ("  (b changes it)", "$text-muted")]

    def _right_parts(self) -> list[Part]:
        r = self.request
        if r.right == "reveal":
            return [("REVEAL the raw value to the asking process", "bold $error"),
                    ("  (it can print, keep or send it anywhere)", "$error")]
        target = command_text(r.command) if r.command else "git's transport"
        return [("inject ", "bold"), ("into ", "$text-muted"), (target, "bold"),
                (" (the value goes into its environment, not to the agent)", "$text-muted")]

    def on_screen_resume(self) -> None:
        """On top now, first shown or uncovered again: it must be read before a key counts."""
        self._shown_at = time.monotonic()

    def on_mount(self) -> None:
        self.query_one("#approval-scope", Input).display = False
        self.query_one("#approval-error", Static).display = False
        self._show_title()
        self.query_one("#approval-deny", Button).focus()
        if self.aegis.live:
            self.set_interval(1.0, self._show_title)

    def on_resize(self) -> None:
        self.set_class(self.size.height < _SHORT_SCREEN, "-short")

    def _show_title(self) -> None:
        left = countdown(self.request.deadline - self.aegis.clock())
        self.query_one("#approval-dialog").border_title = Content.assemble(
            ("Access request", "bold"), f" · 1 of {self._waiting} · denies itself in {left}")

    # -- the queue moves ----------------------------------------------------------------------
    def queue_changed(self, waiting: Sequence[PendingRequest]) -> None:
        """Called by the app: count what waits behind, or leave if this request went away."""
        if self._finished:
            return
        if any(request.id == self.request.id for request in waiting):
            self._waiting = len(waiting)
            self._show_title()
            return
        self.notify(f"The request for {self._said_name} ended unanswered: it timed out "
                    "or the agent stopped waiting.", title="Access request withdrawn", severity="warning",
                    timeout=6, markup=False)
        self._close(None)

    def _close(self, answered: int | None) -> None:
        self._finished = True
        self.dismiss(answered)

    # -- answers ------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "allow" and parameters == ("session",):
            return self.request.session is not None
        if action == "cycle_binding":
            return self._can_bind
        return True

    def on_key(self, event: events.Key) -> None:
        """Runs before the key's binding does (a key reaches the screen, then the bindings)."""
        now = time.monotonic()
        self._last_key_counts = self._ready(now)
        self._last_key = now

    def _ready(self, now: float) -> bool:
        return now - self._shown_at >= self.ARM_SECONDS and now - self._last_key >= self.QUIET_SECONDS

    @property
    def armed(self) -> bool:
        """Whether an answer given now would count: the dialog has been up long enough to
        be read, and no key came in the last moment (someone typing something else)."""
        return self._ready(time.monotonic())

    def _answer_counts(self) -> bool:
        """An answer right after a key is that key's (a binding, or Enter on a button),
        judged when it came; any other answer (a click) is judged now."""
        now = time.monotonic()
        if now - self._last_key < self.QUIET_SECONDS:
            return self._last_key_counts
        return self._ready(now)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        choice = (event.button.id or "").removeprefix("approval-")
        if choice == "deny":
            self.action_deny()
        else:
            self.action_allow(choice)

    def action_deny(self) -> None:
        self._answer(Decision.deny(), f"Denied {self._said_name}.")

    def action_allow(self, choice: str) -> None:
        if choice == "session" and self.request.session is None:
            return
        try:
            scopes = self._edited_scopes()
        except UsageError as error:
            self._say_error(str(error))
            return
        decision, said = CHOICES[choice]
        self._answer(decision._replace(scopes=scopes, bind=self._binding), f"Allowed {self._said_name} {said}.")

    def action_cycle_binding(self) -> None:
        if self._finished or not self._answer_counts():
            return
        order = list(BINDINGS_OFFERED)
        self._binding = order[(order.index(self._binding) + 1) % len(order)]
        self.query_one("#approval-row-bind", Static).update(Content.assemble(*self._bind_parts()))

    def _answer(self, decision: Decision, said: str) -> None:
        if self._finished or not self._answer_counts():
            return
        if self.approvals.decide(self.request.id, decision):
            self.notify(said, timeout=4, markup=False)
        else:
            self.notify(f"The request for {self._said_name} is gone: it timed out or the agent "
                        "stopped waiting.", severity="warning", timeout=6, markup=False)
        self._close(self.request.id)

    # -- scopes --------------------------------------------------------------------------------
    def action_edit_scope(self) -> None:
        if self._finished or not self._answer_counts():
            return
        field = self.query_one("#approval-scope", Input)
        field.display = not field.display
        self._say_error("")
        if field.display:
            field.value = " ".join(self.request.scopes)
            field.focus()
        else:
            self.query_one("#approval-deny", Button).focus()

    def _edited_scopes(self) -> tuple[str, ...]:
        """The scopes typed in the open scope field; ``()`` (as asked) when it is closed."""
        field = self.query_one("#approval-scope", Input)
        return validate_scopes(re.split(r"[\s,]+", field.value)) if field.display else ()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter leaves the field with its scopes kept; choosing is still a separate step."""
        event.stop()
        try:
            self._edited_scopes()
        except UsageError as error:
            self._say_error(str(error))
            return
        self._say_error("")
        self.query_one("#approval-deny", Button).focus()

    def _say_error(self, text: str) -> None:
        error = self.query_one("#approval-error", Static)
        error.display = bool(text)
        error.update(Content.styled(f"✖ {text}", "$error") if text else "")
