"""Facets with counts: contexts, statuses and services. Choosing one narrows the list."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from aegis_tui.core.models import Credential, Health
from aegis_tui.tui.messages import FacetChosen
from aegis_tui.tui.styles import HEALTH_STYLE

def _row(label: str, count: int, width: int, indent: str = "  ", style: str = "") -> Content:
    """``  acme/prod      17``: label left, count right, never wider than ``width``."""
    room = max(3, width - len(indent) - 4)
    label = label if len(label) <= room else label[: room - 1] + "…"
    return Content.assemble(indent, (label, style), (str(count).rjust(width - len(indent) - len(label)), "$text-muted"))


def _heading(title: str) -> Option:
    return Option(Content.styled(title, "bold $text-muted"), disabled=True)


class Sidebar(OptionList):
    """Option ids are ``all``, ``context:<name>``, ``health:<word>``, ``service:<name>``."""

    DEFAULT_CSS = """
    Sidebar { width: 26; border: round $panel-lighten-2; background: $surface; padding: 0; }
    Sidebar:focus { border: round $primary; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._credentials: Sequence[Credential] = ()
        self._now = 0.0

    def show_counts(self, credentials: Sequence[Credential], now: float) -> None:
        self._credentials, self._now = credentials, now
        self._rebuild()

    def on_resize(self) -> None:
        self._rebuild()

    def _rebuild(self) -> None:
        credentials, now = self._credentials, self._now
        width = self.scrollable_content_region.width - 1
        if width < 8:
            return  # not laid out yet; on_resize comes back
        contexts = Counter(c.context or "(none)" for c in credentials)
        healths = Counter(c.health(now) for c in credentials)
        services = Counter(c.service or "(none)" for c in credentials)
        options: list[Option] = [Option(_row("all", len(credentials), width, indent="▸ ", style="bold"), id="all")]
        options.append(_heading("Contexts"))
        options += [Option(_row(name, count, width), id=f"context:{name}") for name, count in sorted(contexts.items())]
        options.append(_heading("Status"))
        options += [Option(_row(f"{health.glyph} {health}", healths[health], width, style=HEALTH_STYLE[health]),
                           id=f"health:{health}") for health in Health if healths[health]]
        options.append(_heading("Services"))
        options += [Option(_row(name, count, width), id=f"service:{name}") for name, count in sorted(services.items())]
        highlighted = self.highlighted
        self.clear_options()
        self.add_options(options)
        if highlighted is not None and highlighted < self.option_count:
            self.highlighted = highlighted

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        kind, _, value = (event.option.id or "all").partition(":")
        self.post_message(FacetChosen(kind, value or None))
