"""Every key, where it applies, and how to remap it."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

if TYPE_CHECKING:
    from aegis_tui.tui.app import AegisApp

ABOUT = (
    "Values stay hidden unless you reveal one (it hides itself again) or copy it (the clipboard is "
    "cleared afterwards, where the terminal allows). Every reveal and copy is audited.\n"
    "Remap any key in ~/.config/aegis-vault/config.toml:\n"
    '  [keymap]\n  "vault.add" = "n,insert"\n'
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close", id="help.close")]

    def __init__(self, sections: list[tuple[str, list[Binding]]]) -> None:
        super().__init__()
        self._sections = sections

    def compose(self) -> ComposeResult:
        keymap = cast("AegisApp", self.app).settings.keymap
        parts: list[str | tuple[str, str]] = []
        for title, bindings in self._sections:
            parts.append((f"{title}\n", "bold $primary"))
            for binding in bindings:
                if not binding.description:
                    continue
                keys = keymap.get(binding.id or "", binding.key).split(",")
                shown = " / ".join(self.app.get_key_display(Binding(key.strip(), "")) for key in keys)
                parts += [(f"  {shown:<22}", "bold"), f"{binding.description:<26}",
                          (f"{binding.id or ''}\n", "$text-muted")]
            parts.append("\n")
        with Vertical(id="help-dialog", classes="dialog"):
            yield Static(Content.styled("Keys", "bold"), classes="dialog-title")
            with VerticalScroll():
                yield Static(Content.assemble(*parts))
                yield Static(Content.styled(ABOUT, "$text-muted"))

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
