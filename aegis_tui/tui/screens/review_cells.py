"""How the access review draws a row: its line, its decision, its details.

Pure functions over the core's ``ReviewRow`` and ``Decision``, so the screen only wires
keys to them. Every name, context, label and selector is a literal part (never
markup). Status is glyph + word + colour, as everywhere in the app.

The table is a ``DataTable`` of one column whose cells are ``Line`` objects, each
drawing a whole row's columns. Measured here at 10k rows: twelve real columns cost
≈ 1.3 s to add and lay out (the table measures every cell and builds a dict per row),
against a 2 s budget for the whole screen; one column costs a fraction of that. A
``Line`` has no ``__rich_measure__``, so the table counts it as width 1 without
looking, and it builds its text only when its row is drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.text import Text
from textual.content import Content
from textual.markup import parse_style
from textual.style import Style

from aegis_tui.core.agents.grants import Grant
from aegis_tui.core.lifecycle.review import UNUSED_DAYS, Decision, ReviewRow
from aegis_tui.core.models import EXPIRY_WARNING_DAYS, Health
from aegis_tui.tui.screens.agent_table_screen import Part, fit
from aegis_tui.tui.styles import health_label
from aegis_tui.tui.when import relative

# Styles in lines are resolved against the theme's variables without a widget behind
# them, so muted text is "dim" there (``$text-muted`` is a colour relative to a background).
MUTED = "dim"
StyleParser = Callable[[str], Style]


class Column(NamedTuple):
    title: str
    width: int  # at least this many cells
    grow: int = 0  # its share of the room left over
    drop: int = 0  # on a narrow terminal columns go, highest first, until the rest fit (0: never)


COLUMNS = (
    Column("NAME", 16, 2), Column("CONTEXT", 10, 1, 3), Column("AGE", 5, 0, 5), Column("ROTATED", 8, 0, 7),
    Column("ROTATION", 14), Column("USED", 8, 0, 4), Column("SESS", 4, 0, 8), Column("GRANTS", 6),
    Column("LEAKS", 5, 0, 6), Column("INC", 3, 0, 9), Column("FLAGS", 16, 2), Column("DECISION", 9),
)
_GAP = 1
Layout = list[tuple[int, int]]  # (index into COLUMNS, width), left to right
FLAG_WORDS = {"unused": "unused", "no-owner-context": "no ctx", "overdue": "overdue", "exposed": "exposed",
              "expiring": "expiring", "expired": "expired", "standing-grants": "standing"}
FLAG_MEANINGS = {
    "unused": f"not used in {UNUSED_DAYS} days, though older than that: does anyone still need it?",
    "no-owner-context": "no context: no project or environment owns it",
    "overdue": "its rotation period has passed",
    "exposed": "its value was found where it should not be, since it was last rotated",
    "expiring": f"expires within {EXPIRY_WARNING_DAYS} days",
    "expired": "past its expiry date",
    "standing-grants": "agents hold grants that need no session: any agent process may use it",
}
_SERIOUS_FLAGS = {"exposed", "expired"}
DECISIONS: dict[str, tuple[str, str]] = {
    "keep": ("✓ keep", "$success"),
    "rotate": ("↻ rotate", "bold $accent"),
    "revoke": ("⊘ revoke", "bold $error"),
    "narrow": ("▾ narrow", "bold $warning"),
}
_ROTATION_HEALTH = {"ok": Health.OK, "due": Health.DUE, "overdue": Health.OVERDUE}  # shown as the list shows them


def layout(total: int) -> Layout:
    """Which columns fit in ``total`` cells, and how wide: the spare room goes to the
    columns that grow; on a narrow terminal the least needed columns go first."""
    kept = list(range(len(COLUMNS)))
    for index in sorted((i for i, c in enumerate(COLUMNS) if c.drop), key=lambda i: -COLUMNS[i].drop):
        if sum(COLUMNS[i].width + _GAP for i in kept) - _GAP <= total:
            break
        kept.remove(index)
    spare = max(0, total - sum(COLUMNS[i].width + _GAP for i in kept) + _GAP)
    shares = sum(COLUMNS[i].grow for i in kept) or 1
    return [(i, COLUMNS[i].width + spare * COLUMNS[i].grow // shares) for i in kept]


def header(columns: Layout) -> Text:
    """The table's one column label: every title over its column."""
    return Text((" " * _GAP).join(COLUMNS[i].title.ljust(width) for i, width in columns))


class Line:
    """One review row drawn as a table line, built only when the table draws it."""

    __slots__ = ("row", "decision", "_now", "_columns", "_parse")

    def __init__(self, row: ReviewRow, decision: Decision | None, now: float, columns: Layout,
                 parse: StyleParser) -> None:
        self.row = row
        self.decision = decision
        self._now = now
        self._columns = columns
        self._parse = parse

    def decided(self, decision: Decision | None) -> Line:
        return Line(self.row, decision, self._now, self._columns, self._parse)

    def content(self) -> Content:
        cells = row_cells(self.row, self.decision, self._now)
        return Content(" " * _GAP).join(fit(cells[i], width) for i, width in self._columns)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for text, style in self.content().render(end="", parse_style=self._parse):  # type: ignore[arg-type]
            yield Segment(text, style.rich_style)


def style_parser(variables: dict[str, str]) -> StyleParser:
    """``"bold $warning"`` -> a ``Style`` in the current theme, each string parsed once."""
    cache: dict[str, Style] = {}

    def parsed(style: str) -> Style:
        found = cache.get(style)
        if found is None:
            found = cache[style] = parse_style(style, variables)
        return found

    return parsed


def ordered(rows: Iterable[ReviewRow]) -> list[ReviewRow]:
    """Flagged rows first (most flags first), then by name: what needs a look comes up top."""
    return sorted(rows, key=lambda row: (-len(row.flags), row.name.casefold()))


def standing(row: ReviewRow) -> list[Grant]:
    return [grant for grant in row.grants if grant.audience == "standing"]


def _count(number: int, style: str = "") -> Part:
    return (str(number), style) if number else ("—", MUTED)


def rotation_parts(row: ReviewRow) -> list[Part]:
    if row.rotation_state not in _ROTATION_HEALTH or row.rotation_days_left is None:
        return [("— none", MUTED)]
    word, style = health_label(_ROTATION_HEALTH[row.rotation_state])
    days = row.rotation_days_left
    return [(word, style), (f" {abs(days)}d", style)]  # days left, or days overdue


def decision_parts(decision: Decision | None) -> list[Part]:
    if decision is None:
        return [("—", MUTED)]
    return [DECISIONS[decision.action]]


def count_parts(counts: Mapping[str, int]) -> list[Part]:
    """``✓ keep 12   ↻ rotate 3   …``: how many of each decision."""
    parts: list[Part] = []
    for action, (word, style) in DECISIONS.items():
        parts += [(f"{word} {counts.get(action, 0)}", style), "   "]
    return parts


def flag_parts(flags: tuple[str, ...]) -> list[Part]:
    if not flags:
        return [("—", MUTED)]
    parts: list[Part] = []
    for flag in flags:
        if parts:
            parts.append((",", MUTED))
        parts.append((FLAG_WORDS[flag], "bold $error" if flag in _SERIOUS_FLAGS else "$warning"))
    return parts


def row_cells(row: ReviewRow, decision: Decision | None, now: float) -> list[list[Part]]:
    """One row's cells, in the order of ``COLUMNS``."""
    revoked = row.status == "revoked"
    return [
        [(row.name, f"strike {MUTED}" if revoked else "bold")],
        [row.context or ("none", MUTED)],
        [f"{row.age_days}d"],
        [f"{row.rotated_days_ago}d ago" if row.rotated_days_ago else "today"],
        rotation_parts(row),
        [relative(row.last_used, now)],
        [_count(len(row.sessions))],
        [_count(len(standing(row)), "$warning")],
        [_count(row.exposures, "bold $error")],
        [_count(row.incidents, "bold $error")],
        flag_parts(row.flags),
        decision_parts(decision),
    ]


def _grant_line(grant: Grant, now: float) -> list[Part]:
    parts: list[Part] = [(grant.id, "$text-muted"), " ", (grant.label, "bold")]
    if grant.selector and grant.selector != grant.label:
        parts += [" ", grant.selector]
    parts += [(" · ", "$text-muted"), grant.context or ("every context", "$text-muted"),
              (" · ", "$text-muted"), (grant.audience, "$warning" if grant.audience == "standing" else ""),
              (" · scopes ", "$text-muted"), " ".join(grant.scopes) or ("any", "$text-muted"),
              (" · ends ", "$text-muted"), relative(grant.expires_at, now, never="never")]
    return parts


def _label(text: str) -> Part:
    """The start of a detail line: labels line up in a column."""
    return f"\n{text:<10}", "$text-muted"


def detail_parts(row: ReviewRow, decision: Decision | None, session_labels: dict[str, str],
                 now: float) -> list[Part]:
    """The highlighted row in full: sessions, grants with selectors and ends, flags explained."""
    parts: list[Part] = [(row.name, "bold"), (f" · {row.kind} · ", "$text-muted"),
                         row.context or ("no context", "$text-muted"), (f" · {row.status}", "$text-muted")]
    if row.expires:
        parts.append((f" · expires {row.expires}", "$text-muted"))
    parts += [_label("rotation"), *rotation_parts(row),
              (f" · rotated {row.rotated_days_ago}d ago · added {row.age_days}d ago", "$text-muted"),
              _label("used"), relative(row.last_used, now), (f" · {row.uses} use(s)", "$text-muted")]
    if row.exposures or row.incidents:
        parts.append((f" · found exposed {row.exposures}× · {row.incidents} open incident(s)", "$error"))
    parts.append(_label("sessions"))
    if not row.sessions:
        parts.append(("none", "$text-muted"))
    for index, session in enumerate(row.sessions):
        parts += [(", " if index else "", "$text-muted"), session]
        if session_labels.get(session):
            parts.append((f" ({session_labels[session]})", "$text-muted"))
    parts.append(_label("grants"))
    if not row.grants:
        parts.append(("none active", "$text-muted"))
    for index, grant in enumerate(row.grants):
        parts += [_label("") if index else "", *_grant_line(grant, now)]
    for flag in row.flags:
        parts += [_label("flag" if flag == row.flags[0] else ""), (FLAG_WORDS[flag], "$warning"),
                  (f": {FLAG_MEANINGS[flag]}", "$text-muted")]
    parts += [_label("decision"), *(decision_parts(decision) if decision else [("undecided", "$text-muted")])]
    if decision and decision.action == "narrow":
        ends = "revoke them" if decision.expires_at is None else f"end them {relative(decision.expires_at, now)}"
        parts.append((f" · {len(decision.grant_ids)} grant(s): {ends}", "$text-muted"))
    return parts
