"""The unlock screen: passphrase in a masked input, key derivation off the event loop.

Argon2id takes about half a second by design, so it runs in a thread worker while
the screen shows progress. When the vault has a keyring slot (or the environment key
is set), unlocking is tried automatically first. A wrong passphrase gets one clear
line and an empty input; the vault audits the failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import work
from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Input, LoadingIndicator, Static

from aegis_tui.core.errors import AegisError
from aegis_tui.core.secret import Secret
from aegis_tui.core.paths import take_env_key
from aegis_tui.core.slots import ENV_KEY_VARIABLE, SlotKind

if TYPE_CHECKING:
    from aegis_tui.tui.app import AegisApp

LOGO = "◆ aegis-vault"


class UnlockScreen(Screen[None]):
    def __init__(self, *, demo_passphrase: str | None = None, message: str | None = None) -> None:
        super().__init__()
        self._demo_passphrase = demo_passphrase
        self._message = message

    @property
    def aegis(self) -> AegisApp:
        return cast("AegisApp", self.app)

    def compose(self) -> ComposeResult:
        with Center(), Vertical(id="unlock-box"):
            yield Static(Content.styled(LOGO, "bold $primary"), id="unlock-logo")
            yield Static(Content.styled(self.aegis.vault_label, "$text-muted"), id="unlock-vault")
            yield Input(placeholder="passphrase", password=True, id="passphrase")
            yield LoadingIndicator(id="unlock-progress")
            yield Static(id="unlock-message")
            if self._demo_passphrase:
                yield Static(Content.assemble(("demo vault · passphrase: ", "$text-muted"),
                                              (self._demo_passphrase, "bold $accent")), id="unlock-demo")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#unlock-progress").display = False
        if self._message:
            self._say(self._message, "$warning")
        vault = self.aegis.vault
        if take_env_key() and vault.has_slot(SlotKind.ENV):
            self._unlock("env", None)
        elif vault.has_slot(SlotKind.KEYRING):
            self._unlock("keyring", None)
        else:
            self.query_one("#passphrase", Input).focus()

    def _say(self, text: str, style: str = "$text-muted") -> None:
        self.query_one("#unlock-message", Static).update(Content.styled(text, style))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value:
            self._say("Type the vault passphrase, then Enter.", "$warning")
            return
        passphrase = Secret(event.value)
        event.input.value = ""
        self._unlock("passphrase", passphrase)

    def _busy(self, busy: bool, text: str = "") -> None:
        self.query_one("#unlock-progress").display = busy
        field = self.query_one("#passphrase", Input)
        field.disabled = busy
        if busy:
            self._say(text)
        else:
            field.focus()

    @work(thread=True, exclusive=True, group="unlock")
    def _unlock(self, method: str, passphrase: Secret | None) -> None:
        labels = {"passphrase": "deriving key (Argon2id)…", "keyring": "asking the OS keyring…",
                  "env": f"using {ENV_KEY_VARIABLE}…"}
        self.app.call_from_thread(self._busy, True, labels[method])
        vault = self.aegis.vault
        try:
            if method == "passphrase":
                assert passphrase is not None
                vault.unlock_with_passphrase(passphrase)
            elif method == "keyring":
                vault.unlock_with_keyring()
            else:
                vault.unlock_with_env_key(take_env_key() or "")
        except AegisError as error:
            self.app.call_from_thread(self._failed, method, str(error))
            return
        self.app.call_from_thread(self.aegis.on_unlocked)

    def _failed(self, method: str, message: str) -> None:
        self._busy(False)
        if method == "passphrase":
            self._say(f"✖ {message}", "$error")
        elif self.aegis.vault.has_slot(SlotKind.PASSPHRASE):
            self._say(f"{message}. Type the passphrase instead.", "$warning")
        else:
            self._say(f"✖ {message}", "$error")
