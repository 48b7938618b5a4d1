"""A masked input that keeps a pasted value whole.

Textual's ``Input`` keeps only the first line of a paste. For a password that is
harmless; for a PEM private key or certificate it silently stores one line of many.
The value is masked, so line breaks inside it need no display of their own.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class SecretInput(Input):
    def __init__(self, *, placeholder: str = "", id: str | None = None) -> None:
        super().__init__(placeholder=placeholder, password=True, id=id, compact=True)

    def _on_paste(self, event: events.Paste) -> None:
        event.prevent_default()  # Textual would also run Input's handler, pasting line one again
        if event.text:
            if self.selection.is_empty:
                self.insert_text_at_cursor(event.text)
            else:
                self.replace(event.text, *self.selection)
        event.stop()
