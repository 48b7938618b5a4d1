"""Messages that travel up the widget tree ("attributes down, messages up")."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from aegis_tui.core.models import Credential


@dataclass
class CredentialHighlighted(Message):
    """The cursor moved to another credential (or to none)."""

    credential: Credential | None


@dataclass
class CredentialChosen(Message):
    """Enter on a credential: open its actions."""

    credential: Credential


@dataclass
class FacetChosen(Message):
    """A sidebar entry was chosen: ``kind`` is 'context', 'service', 'health' or 'all'."""

    kind: str
    value: str | None
