"""The quarterly access review: every credential, who can use it, and one decision each.

The core's ``Review`` holds the rows (a snapshot taken when the screen opens) and the
decisions; this screen draws them and maps keys to decisions: ``k`` keep, ``o`` rotate,
``x`` revoke, ``n`` narrow the standing grants, ``u`` undo, ``K`` keep every undecided
row nothing flagged. Flagged rows come first, so the ones that need thought are where
the reviewer starts. ``F`` finishes: after a confirmation that counts the decisions it
applies them (rotations through ``rotate_for_review``), and the signed report can be
saved. Until every row has a decision the review refuses to finish.

Reading 10k credentials and their use takes a while, so the snapshot is taken in a
thread worker while the top line says "reading the vault…", and the rows are added in
one batch (see ``review_cells`` for why they are cheap to add). A still line, not
Textual's animated loading indicator: its animation competes with the worker for the
interpreter and made the screen a third of a second slower at 10k credentials.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from aegis_tui.core.agents.sessions import Sessions
from aegis_tui.core.errors import AegisError
from aegis_tui.core.lifecycle.review import (
    ACTIONS,
    Decision,
    Review,
    ReviewReport,
    ReviewRow,
    last_review_age_days,
    rotate_for_review,
)
from aegis_tui.tui.screens.agent_table_screen import Part
from aegis_tui.tui.screens.confirm_modal import ConfirmModal
from aegis_tui.tui.screens.narrow_modal import NarrowModal
from aegis_tui.tui.screens.review_cells import (
    Layout,
    Line,
    StyleParser,
    count_parts,
    detail_parts,
    header,
    layout,
    ordered,
    standing,
    style_parser,
)
from aegis_tui.tui.screens.review_result_modal import ReviewResultModal

if TYPE_CHECKING:
    from aegis_tui.tui.app import AegisApp

_MARGINS = 3  # the table's left padding and its scrollbar
_COLUMN = "review"  # the table's one column: each cell is a whole line (see review_cells)
_NEEDS_ROW = {"decide", "narrow", "undo"}


class ReviewScreen(Screen[None]):
    HEADING = "Access review"
    BINDINGS = [
        Binding("k", "decide('keep')", "Keep", id="review.keep", tooltip="Keep it as it is"),
        Binding("o", "decide('rotate')", "Rotate", id="review.rotate", tooltip="Give it a new value at the end"),
        Binding("x", "decide('revoke')", "Revoke", id="review.revoke", tooltip="Revoke it at the end"),
        Binding("n", "narrow", "Narrow", id="review.narrow", tooltip="Revoke or shorten its standing grants"),
        Binding("u", "undo", "Undo", id="review.undo", tooltip="Take back the decision on this row"),
        Binding("K", "keep_unflagged", "Keep unflagged", id="review.keep_unflagged",
                tooltip="Keep every undecided row with no flag"),
        Binding("F", "finish", "Finish", id="review.finish", tooltip="Apply the decisions and sign the report"),
        Binding("escape", "back", "Back", id="review.back", tooltip="Leave the review (nothing is applied)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.review: Review | None = None
        self.rows: list[ReviewRow] = []  # in table order
        self._labels: dict[str, str] = {}  # session id -> label
        self._last_review: int | None = None
        self._finishing = False
        self._parse: StyleParser  # the theme's styles: set on mount, when the app is at hand
        self.columns_shown: Layout = []  # the columns each line draws, fitted to the screen on mount

    @property
    def aegis(self) -> AegisApp:
        return cast("AegisApp", self.app)

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="review-top")
        yield DataTable(id="review-table", cursor_type="row", cell_padding=0)
        yield Static(id="review-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        width = self.app.size.width - _MARGINS
        self.columns_shown = layout(width)
        table.add_column(header(self.columns_shown), key=_COLUMN, width=width)
        table.focus()
        self._parse = style_parser(self.app.theme_variables)
        self._draw_top()
        self.start()

    # -- loading ----------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="review")
    def start(self) -> None:
        """Take the review's snapshot off the event loop (every credential, its use and grants)."""
        vault = self.aegis.vault
        try:
            review = Review.start(vault)
            labels = {session.id: session.label for session in Sessions(vault).list() if session.label}
            last = last_review_age_days(vault)
        except AegisError as error:
            self.app.call_from_thread(self._fail, error)
            return
        self.app.call_from_thread(self._loaded, review, ordered(review.rows), labels, last)

    def _loaded(self, review: Review, rows: list[ReviewRow], labels: dict[str, str], last: int | None) -> None:
        if not self.is_attached:
            return  # left before the snapshot was ready
        self.review, self.rows, self._labels, self._last_review = review, rows, labels, last
        table = self.query_one(DataTable)
        now = self.aegis.clock()
        for row in rows:  # one batch: the table lays itself out once, on its next idle
            table.add_row(Line(row, None, now, self.columns_shown, self._parse), key=row.name)
        self._draw_top()
        self._show_detail()

    def _draw_top(self) -> None:
        now = datetime.fromtimestamp(self.aegis.clock())
        parts: list[Part] = [(" ◆ aegis-vault ", "bold $primary"), ("· ", "$text-muted"), (self.HEADING, "bold"),
                             (f" · Q{(now.month - 1) // 3 + 1} {now.year}", "$text-muted")]
        if self.review is None:
            parts.append((" · reading the vault…", "$text-muted"))
        else:
            flagged = sum(bool(row.flags) for row in self.rows)
            parts += [(f" · {len(self.rows)} credentials · ", "$text-muted"),
                      (f"{flagged} flagged", "$warning" if flagged else "$text-muted"),
                      (f" · {len(self.review.decisions)} decided · ", "$text-muted"),
                      ("never reviewed before" if self._last_review is None
                       else f"last review {self._last_review}d ago", "$text-muted")]
        self.query_one("#review-top", Static).update(Content.assemble(*parts))

    # -- selection --------------------------------------------------------------------------------
    @property
    def current(self) -> ReviewRow | None:
        table = self.query_one(DataTable)
        index = table.cursor_row
        return self.rows[index] if self.review is not None and 0 <= index < len(self.rows) else None

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._show_detail()
        self.refresh_bindings()

    def _show_detail(self) -> None:
        row = self.current
        detail = self.query_one("#review-detail", Static)
        if row is None or self.review is None:
            detail.update(Content.styled("no credentials" if self.review else "", "$text-muted"))
            return
        detail.update(Content.assemble(*detail_parts(row, self.review.decisions.get(row.name), self._labels,
                                                     self.aegis.clock())))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return not self._finishing  # the result comes back to this screen
        if self.review is None or self._finishing:
            return False
        row = self.current
        if action in _NEEDS_ROW and row is None:
            return False
        if action == "narrow":
            return bool(standing(row)) or None  # type: ignore[arg-type]
        if action == "undo":
            return row.name in self.review.decisions or None  # type: ignore[union-attr]
        return True

    # -- deciding ---------------------------------------------------------------------------------
    def _decide(self, row: ReviewRow, decision: Decision | None) -> None:
        """Record (or, with None, take back) one decision and redraw its cell."""
        assert self.review is not None
        if decision is None:
            self.review.decisions.pop(row.name, None)
        else:
            try:
                self.review.decide(row.name, decision)
            except AegisError as error:
                self._fail(error)
                return
        table = self.query_one(DataTable)
        line = cast(Line, table.get_cell(row.name, _COLUMN))
        table.update_cell(row.name, _COLUMN, line.decided(decision))

    def _decided(self, advance: bool = True) -> None:
        """After a key decided: the top line and details follow, the cursor moves on."""
        if advance:
            self.query_one(DataTable).action_cursor_down()
        self._draw_top()
        self._show_detail()
        self.refresh_bindings()

    def action_decide(self, action: str) -> None:
        row = self.current
        if row is not None and action in ACTIONS:
            self._decide(row, Decision(action))
            self._decided()

    def action_undo(self) -> None:
        row = self.current
        if row is not None:
            self._decide(row, None)
            self._decided(advance=False)

    def action_narrow(self) -> None:
        row = self.current
        if row is None or not standing(row):
            return

        def narrowed(decision: Decision | None) -> None:
            if decision is not None:
                self._decide(row, decision)
                self._decided()

        self.app.push_screen(NarrowModal(row.name, standing(row), self.aegis.clock), narrowed)

    def action_keep_unflagged(self) -> None:
        if self.review is None:
            return
        keep = Decision("keep")
        chosen = [row for row in self.rows if not row.flags and row.name not in self.review.decisions]
        for row in chosen:
            self._decide(row, keep)
        self._decided(advance=False)
        self.notify(f"kept {len(chosen)} unflagged credential(s)", timeout=3, markup=False)

    # -- finishing --------------------------------------------------------------------------------
    def action_finish(self) -> None:
        review = self.review
        if review is None or self._finishing:
            return
        left = review.undecided
        if left:
            self.notify(f"{len(left)} credential(s) still have no decision, first {left[0]}. "
                        "Decide every row first (K keeps the unflagged ones).",
                        title="Not finished", severity="warning", timeout=6, markup=False)
            return
        body = count_parts(Counter(decision.action for decision in review.decisions.values()))
        body.append("\n\nRevocations, rotations and narrowed grants take effect now. Each decision is "
                    "audited, and the report is signed with the vault's audit key.")
        title = Content.assemble(("Finish the review of ", "bold $warning"), (f"{len(review.rows)} credentials", "bold"))

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._finishing = True
                self.refresh_bindings()
                self._apply(review)

        self.app.push_screen(ConfirmModal(title, Content.assemble(*body), "Finish"), confirmed)

    @work(thread=True, exclusive=True, group="review-finish")
    def _apply(self, review: Review) -> None:
        """Apply the decisions in a thread: rotations may run generators or provider hooks."""
        vault = self.aegis.vault
        try:
            report = review.finish(rotate=lambda name: rotate_for_review(vault, name))
        except AegisError as error:
            self.app.call_from_thread(self._not_finished, error)
            return
        self.app.call_from_thread(self._finished, report)

    def _not_finished(self, error: AegisError) -> None:
        self._finishing = False
        self.refresh_bindings()
        self._fail(error)

    def _finished(self, report: ReviewReport) -> None:
        """The vault changed and the review is no longer due: the vault screen hears of both."""
        self.aegis.vault_changed()
        screen = self.aegis.vault_screen
        if screen is not None:
            screen.check_review()
        self.app.push_screen(ReviewResultModal(report, self.aegis.clock), lambda _: self.dismiss())

    def _fail(self, error: AegisError) -> None:
        self.notify(str(error), title="Not done", severity="error", timeout=6, markup=False)

    def action_back(self) -> None:
        self.dismiss()
