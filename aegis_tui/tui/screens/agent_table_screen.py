"""What the grants and sessions views share: a table of agent records over the vault.

A top line, column headings, one row per record (an ``OptionList`` of assembled
``Content``: every name, label and reason is drawn literally), the highlighted record's
details below, and the footer. Records are decrypted in a thread worker, reloaded on a
timer when the app is live and after every change; ``x`` ends the highlighted record
after a confirmation whose safe answer is the default; ``a`` shows the inactive ones
too. Subclasses say how to load, draw and end their records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, NamedTuple, cast

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from aegis_tui.core.errors import AegisError
from aegis_tui.core.vault import Vault
from aegis_tui.tui.screens.confirm_modal import ConfirmModal

if TYPE_CHECKING:
    from aegis_tui.tui.app import AegisApp

Part = str | tuple[str, str]
REFRESH_SECONDS = 2.0
_GAP = 1


class Column(NamedTuple):
    title: str
    width: int  # at least this many cells
    grow: int = 0  # its share of the room left over (0: none)


class Row(NamedTuple):
    id: str
    cells: tuple[list[Part], ...]  # one per column
    active: bool  # only active records can be ended
    detail: list[Part]  # shown under the table while the row is highlighted
    name: str  # how confirmations and toasts call it


def fit(parts: list[Part], width: int) -> Content:
    """One cell: literal parts, cut with an ellipsis or padded to exactly ``width``."""
    return Content.assemble(*parts).truncate(width, ellipsis=True, pad=True)


class AgentTableScreen(Screen[None]):
    HEADING: ClassVar[str] = ""  # "Agent grants": the top line and the help section
    NOUN: ClassVar[str] = ""  # "grants": counts in the top line
    ACTIVE: ClassVar[str] = "active"  # what the top line calls the rows still in force ("open" incidents)
    COLUMNS: ClassVar[tuple[Column, ...]] = ()

    def __init__(self) -> None:
        super().__init__()
        self.show_all = False
        self.rows: list[Row] = []
        self._drawn: tuple[list[Row], bool] | None = None

    @property
    def aegis(self) -> AegisApp:
        return cast("AegisApp", self.app)

    # -- what subclasses say -------------------------------------------------------------------
    def load_rows(self, vault: Vault, now: float, show_all: bool) -> list[Row]:
        """Read the records (in a thread: they are sealed) and draw each as a row."""
        raise NotImplementedError

    def end_record(self, row: Row) -> str:
        """End one record through the core; what the toast says."""
        raise NotImplementedError

    def confirmation(self, row: Row) -> tuple[Content, Content, str]:
        """Title, body and button label of the question before ``end_record``."""
        raise NotImplementedError

    # -- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="agent-top")
        with Vertical(id="agent-frame"):
            yield Static(id="agent-header")
            yield OptionList(id="agent-list", compact=True)
        yield Static(id="agent-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#agent-list", OptionList).focus()
        self.reload()
        if self.aegis.live:
            self.set_interval(REFRESH_SECONDS, self.reload)

    def on_resize(self) -> None:
        self._draw()

    # -- loading -------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="agent-records")
    def reload(self) -> None:
        try:
            rows = self.load_rows(self.aegis.vault, self.aegis.clock(), self.show_all)
        except AegisError:
            return  # locked meanwhile: the lock takes this screen away
        self.app.call_from_thread(self._loaded, rows)

    def _loaded(self, rows: list[Row]) -> None:
        if self.is_attached and (rows, self.show_all) != self._drawn:
            self.rows = rows
            self._drawn = (rows, self.show_all)
            self._draw()

    def _widths(self) -> list[int]:
        room = self.query_one("#agent-list", OptionList).scrollable_content_region.width - 1
        spare = max(0, room - sum(c.width for c in self.COLUMNS) - _GAP * (len(self.COLUMNS) - 1))
        shares = sum(c.grow for c in self.COLUMNS) or 1
        return [c.width + spare * c.grow // shares for c in self.COLUMNS]

    def _line(self, cells: tuple[list[Part], ...], widths: list[int]) -> Content:
        return Content(" " * _GAP).join(fit(cell, width) for cell, width in zip(cells, widths))

    def _draw(self) -> None:
        listing = self.query_one("#agent-list", OptionList)
        widths = self._widths()
        titles = tuple([(c.title, "bold $text-muted")] for c in self.COLUMNS)
        self.query_one("#agent-header", Static).update(self._line(titles, widths))
        kept = self.current
        listing.clear_options()
        listing.add_options(Option(self._line(row.cells, widths), id=row.id) for row in self.rows)
        ids = [row.id for row in self.rows]
        if self.rows:
            listing.highlighted = ids.index(kept.id) if kept is not None and kept.id in ids else 0
        active = sum(row.active for row in self.rows)
        shown = (f"{active} {self.ACTIVE} of {len(self.rows)} {self.NOUN}" if self.show_all
                 else f"{active} {self.ACTIVE} {self.NOUN}")
        self.query_one("#agent-top", Static).update(Content.assemble(
            (" ◆ aegis-vault ", "bold $primary"), ("· ", "$text-muted"), (self.HEADING, "bold"),
            (f" · {shown}", "$text-muted")))
        self.query_one("#agent-frame").border_title = Content(self.HEADING.lower())
        self._show_detail()
        self.refresh_bindings()

    # -- selection -------------------------------------------------------------------------------
    @property
    def current(self) -> Row | None:
        index = self.query_one("#agent-list", OptionList).highlighted
        return self.rows[index] if index is not None and index < len(self.rows) else None

    @on(OptionList.OptionHighlighted, "#agent-list")
    def _highlighted(self) -> None:
        self._show_detail()
        self.refresh_bindings()

    def _show_detail(self) -> None:
        row = self.current
        text = Content.assemble(*row.detail) if row is not None else Content.styled(f"no {self.NOUN}", "$text-muted")
        self.query_one("#agent-detail", Static).update(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "end":
            row = self.current
            return row is not None and row.active
        return True

    # -- actions -----------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.dismiss()

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        self.reload()

    def action_end(self) -> None:
        row = self.current
        if row is None or not row.active:
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                said = self.end_record(row)
            except AegisError as error:
                self.notify(str(error), title="Not done", severity="error", timeout=6, markup=False)
                return
            self.notify(said, timeout=4, markup=False)
            self.reload()

        self.app.push_screen(ConfirmModal(*self.confirmation(row)), confirmed)
