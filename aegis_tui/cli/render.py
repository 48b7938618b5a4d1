"""Plain-text output for the command line: aligned columns, readable times, JSON.

No Rich here: it costs ~50 ms to import, and agents parse this output anyway.
Every cell is made printable first, so a crafted name cannot move the cursor.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone



def printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)


def table(headers: list[str], rows: list[list[str]]) -> str:
    cells = [[printable(cell) for cell in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def timestamp(seconds: float | None) -> str:
    if not seconds:
        return "-"
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def relative(seconds: float, now: float) -> str:
    """``in 1h 59m`` / ``3d 4h ago``: the two largest units."""
    delta = seconds - now
    remaining = int(abs(delta))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= size or (unit == "s" and not parts):
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
        if len(parts) == 2:
            break
    text = " ".join(parts)
    return f"in {text}" if delta > 0 else f"{text} ago"


def emit(text: str) -> None:
    sys.stdout.write(text + "\n")


def emit_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
