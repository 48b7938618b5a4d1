"""Times as the agent views show them: short, relative where that reads faster, local."""

from __future__ import annotations

from datetime import datetime


def relative(moment: float | None, now: float, never: str = "never") -> str:
    """``in 59m`` / ``3h ago`` / ``now``: the largest unit, short enough for a column."""
    if moment is None:
        return never
    delta = moment - now
    seconds = abs(int(delta))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            amount = f"{seconds // size}{unit}"
            return f"in {amount}" if delta > 0 else f"{amount} ago"
    return "now"


def clock_time(moment: float, now: float) -> str:
    """``14:02`` today, ``2026-11-19 14:02`` on another day (local time)."""
    when = datetime.fromtimestamp(moment)
    same_day = when.date() == datetime.fromtimestamp(now).date()
    return when.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")


def countdown(seconds: float) -> str:
    """``1:43``: whole seconds left, rounded up, never below ``0:00``."""
    left = max(0, int(seconds + 0.999))
    return f"{left // 60}:{left % 60:02d}"
