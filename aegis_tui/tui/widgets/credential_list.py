"""The credential list: a Line API widget that renders only the rows on screen.

A ``DataTable`` measures every cell and takes seconds to refill at 100k rows; this list
keeps the rows as a plain Python list and draws the visible ones on demand, so a new
filter result costs one list assignment and one refresh. Cells are plain segments, so
a name like ``evil[/]`` is drawn literally and can never be parsed as markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from aegis_tui.core.models import Credential, Health, RotationState
from aegis_tui.tui.messages import CredentialChosen, CredentialHighlighted


class Column(NamedTuple):
    key: str
    title: str
    width: int
    priority: int  # columns are dropped, highest number first, until the rest fit


NAME_MIN_WIDTH = 18
COLUMNS = (
    Column("name", "NAME", 0, 0),  # 0: takes the remaining width
    Column("service", "SERVICE", 11, 4),
    Column("kind", "KIND", 17, 6),
    Column("context", "CONTEXT", 13, 1),
    Column("health", "STATUS", 10, 0),
    Column("rotation", "DUE IN", 6, 3),
    Column("version", "VER", 4, 7),
    Column("used", "USED", 8, 5),
)
# "match" keeps the order the filter ranked (context, then name, with no query).
SORT_KEYS = ("match", "name", "context", "service", "health", "rotation", "used")
_HEALTH_ORDER = {health: rank for rank, health in enumerate(Health)}


def ago(seconds: float | None, now: float) -> str:
    if not seconds:
        return "—"
    delta = max(0, int(now - seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{delta // size}{unit} ago"
    return "now"


def rotation_cell(credential: Credential, now: float) -> str:
    state, days = credential.rotation(now)
    return "—" if state is RotationState.NONE or days is None else f"{days}d"


class CredentialList(ScrollView, can_focus=True):
    """Rows of credentials with a cursor; posts ``CredentialHighlighted``/``CredentialChosen``."""

    COMPONENT_CLASSES = {
        "credential-list--header",
        "credential-list--cursor",
        "credential-list--muted",
        *(f"credential-list--{health}" for health in Health),
    }
    DEFAULT_CSS = """
    CredentialList { background: $surface; scrollbar-size-vertical: 1; overflow-x: hidden; }
    CredentialList > .credential-list--header { color: $text-muted; text-style: bold; background: $panel; }
    CredentialList > .credential-list--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    CredentialList:focus > .credential-list--cursor { background: $primary 40%; text-style: bold; }
    CredentialList > .credential-list--muted { color: $text-muted; }
    CredentialList > .credential-list--ok { color: $success; }
    CredentialList > .credential-list--due { color: $accent; }
    CredentialList > .credential-list--overdue { color: $warning; text-style: bold; }
    CredentialList > .credential-list--expiring { color: $warning; }
    CredentialList > .credential-list--expired { color: $error; }
    CredentialList > .credential-list--exposed { color: $error; text-style: bold; }
    CredentialList > .credential-list--revoked { color: $text-muted; text-style: strike; }
    """
    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "First", show=False),
        Binding("end,G", "jump(-1)", "Last", show=False),
        Binding("enter", "choose", "Actions", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True)
    sort_key: reactive[str] = reactive("match")

    def __init__(self, clock: Callable[[], float], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._rows: list[Credential] = []
        self._ranked: list[Credential] = []  # as given, so "match" can restore the filter's order
        self._last_used: dict[str, float] = {}

    # -- data ---------------------------------------------------------------------------
    @property
    def rows(self) -> Sequence[Credential]:
        return self._rows

    @property
    def current(self) -> Credential | None:
        return self._rows[self.cursor] if 0 <= self.cursor < len(self._rows) else None

    def set_rows(self, rows: Sequence[Credential], last_used: dict[str, float] | None = None,
                 keep: Credential | None = None) -> None:
        """Show ``rows`` (already filtered and ranked); keep the cursor on ``keep`` if present."""
        if last_used is not None:
            self._last_used = last_used
        self._ranked = list(rows)
        self._rows = list(rows)
        self._sort()
        target = 0
        if keep is not None:
            target = next((i for i, row in enumerate(self._rows) if row.id == keep.id), 0)
        self.virtual_size = Size(self.size.width, len(self._rows) + 1)
        self.cursor = min(target, max(0, len(self._rows) - 1))
        self.refresh()

    def _sort(self) -> None:
        now = self._clock()
        key = self.sort_key
        if key == "match":
            return
        if key == "health":
            self._rows.sort(key=lambda c: (_HEALTH_ORDER[c.health(now)], c.name.casefold()))
        elif key == "rotation":
            self._rows.sort(key=lambda c: (c.rotation(now)[1] is None, c.rotation(now)[1] or 0))
        elif key == "used":
            self._rows.sort(key=lambda c: -self._last_used.get(c.name.casefold(), 0.0))
        elif key == "name":
            self._rows.sort(key=lambda c: c.name.casefold())
        else:
            self._rows.sort(key=lambda c: (getattr(c, key).casefold(), c.name.casefold()))

    def watch_sort_key(self) -> None:
        self.set_rows(self._ranked, keep=self.current)

    def cycle_sort(self) -> str:
        self.sort_key = SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)]
        return self.sort_key

    # -- cursor -----------------------------------------------------------------------------
    def watch_cursor(self, cursor: int) -> None:
        visible = max(1, self.size.height - 1)
        if cursor < self.scroll_y:
            self.scroll_to(y=cursor, animate=False)
        elif cursor >= self.scroll_y + visible:
            self.scroll_to(y=cursor - visible + 1, animate=False)
        self.refresh()
        self.post_message(CredentialHighlighted(self.current))

    def action_cursor(self, step: int) -> None:
        if self._rows:
            self.cursor = max(0, min(len(self._rows) - 1, self.cursor + step))

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.size.height - 2))

    def action_jump(self, where: int) -> None:
        if self._rows:
            self.cursor = 0 if where == 0 else len(self._rows) - 1

    def action_choose(self) -> None:
        if self.current is not None:
            self.post_message(CredentialChosen(self.current))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)  # event.x/y count the border too
        if offset is None:
            return
        if offset.y == 0:
            column = self._column_at(offset.x)
            if column is not None and column in SORT_KEYS:
                self.sort_key = column
            return
        index = int(self.scroll_y) + offset.y - 1
        if 0 <= index < len(self._rows):
            self.cursor = index
            if event.chain == 2:
                self.action_choose()

    # -- drawing -------------------------------------------------------------------------------
    def _layout(self) -> list[tuple[Column, int]]:
        width = self.scrollable_content_region.width
        shown = list(COLUMNS)
        droppable = [c for c in COLUMNS if c.priority and c.key != self.sort_key]  # never hide the sort column
        for column in sorted(droppable, key=lambda c: -c.priority):
            if width - sum(c.width + 1 for c in shown if c.width) - 2 >= NAME_MIN_WIDTH:
                break
            shown.remove(column)
        fixed = sum(column.width + 1 for column in shown if column.width)
        name_width = max(8, width - fixed - 2)
        return [(column, column.width or name_width) for column in shown]

    def _column_at(self, x: int) -> str | None:
        offset = 1
        for column, width in self._layout():
            if offset <= x < offset + width + 1:
                return column.key
            offset += width + 1
        return None

    def _cells(self, credential: Credential, now: float) -> dict[str, str]:
        health = credential.health(now)
        return {
            "name": credential.name,
            "service": credential.service or "—",
            "kind": str(credential.kind),
            "context": credential.context or "—",
            "health": f"{health.glyph} {health}",
            "rotation": rotation_cell(credential, now),
            "version": f"v{credential.current_version}",
            "used": ago(self._last_used.get(credential.name.casefold()), now),
        }

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        layout = self._layout()
        if y == 0:
            style = self.get_component_rich_style("credential-list--header")
            marker = {self.sort_key: " ▲"}
            parts = [Segment(" ", style)]
            for column, col_width in layout:
                parts.append(Segment(set_cell_size(column.title + marker.get(column.key, ""), col_width) + " ", style))
            return Strip(parts).adjust_cell_length(width, style)
        index = int(self.scroll_y) + y - 1
        if index >= len(self._rows):
            return Strip.blank(width, self.rich_style)
        credential = self._rows[index]
        now = self._clock()
        base = self.rich_style
        if index == self.cursor:
            base = base + self.get_component_rich_style("credential-list--cursor")
        health_style = self.get_component_rich_style(f"credential-list--{credential.health(now)}")
        muted = self.get_component_rich_style("credential-list--muted")
        cells = self._cells(credential, now)
        parts = [Segment("▸" if index == self.cursor else " ", base)]
        for column, col_width in layout:
            text = cells[column.key]
            if cell_len(text) > col_width:
                text = set_cell_size(text, col_width - 1) + "…"
            style: Style = base
            if column.key == "health":
                style = base + Style(color=health_style.color, bold=health_style.bold, strike=health_style.strike)
            elif column.key in ("kind", "used", "version") or text == "—":
                style = base + Style(color=muted.color)
            parts.append(Segment(set_cell_size(text, col_width) + " ", style))
        return Strip(parts).adjust_cell_length(width, base)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self._rows) + 1)
