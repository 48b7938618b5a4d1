"""Remove terminal escape sequences before scanning, and map offsets back to the original.

Terminal logs and captured agent sessions colour their output: a colour change in the
middle of a secret (``ab\\x1b[31mcd``) hides it from every literal search. So the
scanner searches the text with escape sequences removed, and reports positions in the
original through an ``OffsetMap``.

Removed: CSI sequences (``ESC [`` parameters, intermediates, final byte; SGR colours
among them), OSC sequences (``ESC ]`` ... ``BEL`` or ``ESC \\``), nF sequences
(``ESC (B`` and the like) and two-byte ``ESC`` sequences. Each kind is bounded in
length, so a stray ``ESC`` in binary data never swallows the rest of a file, and a
stream never has to hold back more than a bounded number of bytes.
"""

from __future__ import annotations

import bisect
import re

MAX_CSI = 64  # parameter and intermediate bytes of one CSI sequence
MAX_OSC = 4096  # payload bytes of one OSC sequence (window titles, hyperlinks)

_SEQUENCE = re.compile(
    rb"\x1b(?:"
    rb"\[[\x30-\x3f\x20-\x2f]{0,%d}[\x40-\x7e]"  # CSI
    rb"|\][^\x07\x1b]{0,%d}(?:\x07|\x1b\\)"  # OSC
    rb"|[\x20-\x2f]{1,8}[\x30-\x7e]"  # nF
    rb"|[\x30-\x5a\x5c\x5e-\x7e]"  # two bytes (not '[' nor ']', which open CSI and OSC)
    rb")" % (MAX_CSI, MAX_OSC))
# The start of a sequence that the next bytes could still complete.
_INCOMPLETE = re.compile(
    rb"\x1b(?:\[[\x30-\x3f\x20-\x2f]{0,%d}|\][^\x07\x1b]{0,%d}\x1b?|[\x20-\x2f]{1,8})?" % (MAX_CSI, MAX_OSC))
MAX_HELD = 2 + MAX_OSC + 1  # the longest incomplete sequence


class OffsetMap:
    """Offsets in stripped bytes to offsets in the original, in O(log n) per look-up.

    Stored as sorted ``(stripped offset, bytes removed before it)`` steps: only one
    entry per place where something was removed, not one per byte.
    """

    def __init__(self) -> None:
        self._stripped: list[int] = []
        self._removed: list[int] = []

    def removed_at(self, stripped: int, total_removed: int) -> None:
        """Record that, from stripped offset ``stripped`` on, ``total_removed`` bytes have been removed."""
        if self._stripped and self._stripped[-1] == stripped:
            self._removed[-1] = total_removed
        else:
            self._stripped.append(stripped)
            self._removed.append(total_removed)

    def to_original(self, stripped: int) -> int:
        """The original offset of the byte at ``stripped`` (escape sequences before it are skipped)."""
        step = bisect.bisect_right(self._stripped, stripped) - 1
        return stripped + (self._removed[step] if step >= 0 else 0)

    def forget_before(self, stripped: int) -> None:
        """Drop the steps no longer needed to map offsets from ``stripped`` on: keeps a long stream's map small."""
        step = bisect.bisect_right(self._stripped, stripped) - 1
        if step > 0:
            del self._stripped[:step]
            del self._removed[:step]


class AnsiStripper:
    """Strips a stream chunk by chunk, holding back a sequence cut off at the end of a chunk."""

    def __init__(self) -> None:
        self.offsets = OffsetMap()
        self._held = b""
        self._stripped = 0  # stripped bytes given out so far
        self._removed = 0  # original bytes removed so far

    def feed(self, chunk: bytes) -> bytes:
        """The stripped bytes of ``chunk`` that are final; a possibly incomplete sequence waits for the next."""
        data = self._held + chunk
        kept, end = self._strip(data)
        tail = data[end:]
        incomplete = _start_of_incomplete(tail)
        self._held = tail[incomplete:]
        kept.append(tail[:incomplete])
        out = b"".join(kept)
        self._stripped += len(tail[:incomplete])
        return out

    def finish(self) -> bytes:
        """The held-back bytes at the end of the stream: an unfinished sequence is kept as text."""
        held, self._held = self._held, b""
        self._stripped += len(held)
        return held

    def _strip(self, data: bytes) -> tuple[list[bytes], int]:
        """Bytes before and between the complete sequences of ``data``, and where the last one ends."""
        kept: list[bytes] = []
        position = 0
        for sequence in _SEQUENCE.finditer(data):
            kept.append(data[position:sequence.start()])
            self._stripped += sequence.start() - position
            self._removed += sequence.end() - sequence.start()
            self.offsets.removed_at(self._stripped, self._removed)
            position = sequence.end()
        return kept, position


def _start_of_incomplete(tail: bytes) -> int:
    """Where, in bytes holding no complete sequence, an unfinished one starts (``len(tail)`` if none).

    The earliest such ``ESC`` wins: an unfinished OSC may already hold the ``ESC`` of its terminator.
    """
    escape = tail.find(b"\x1b", max(0, len(tail) - MAX_HELD))
    while escape >= 0:
        if _INCOMPLETE.fullmatch(tail, escape):
            return escape
        escape = tail.find(b"\x1b", escape + 1)
    return len(tail)


def strip_ansi(data: bytes) -> tuple[bytes, OffsetMap]:
    """``data`` without its escape sequences, and the map from stripped offsets to offsets in ``data``."""
    stripper = AnsiStripper()
    stripped = stripper.feed(data) + stripper.finish()
    return stripped, stripper.offsets
