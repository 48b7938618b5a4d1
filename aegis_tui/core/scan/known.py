"""Find the vault's own values in files and streams: the detector no rule can replace.

A provider rule recognises a token by its shape; a vault value has no shape to
recognise, but the vault knows it. Every value of every credential, retired versions
included (a retired key may still be live somewhere), is turned into the same needles
the output masker of ``aegis-vault run`` hides (``redaction.encodings``) and searched
with the same streaming engine (``redaction.engines``), so what ``run`` would mask is
exactly what the scanner reports.

Values shorter than ``MIN_VALUE`` bytes are not searched, and needles shorter than
``MIN_NEEDLE`` bytes are dropped (so a 4- or 5-byte value is found only in its longer
encodings): as for masking, such short strings occur by chance everywhere.

Input is searched with terminal escape sequences removed (``ansi``), since a colour
code inside a value hides it; positions are reported in the original bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple

from aegis_tui.core.redaction.encodings import LABELS, labelled_needles
from aegis_tui.core.redaction.engines import compile_matcher
from aegis_tui.core.redaction.masker import printable_label
from aegis_tui.core.scan.ansi import AnsiStripper, OffsetMap
from aegis_tui.core.scan.findings import KNOWN, Finding

RULE_ID = "known-value"
_RANK = {label: rank for rank, label in enumerate(LABELS)}


class _Needle(NamedTuple):
    """What a needle stands for; the needle bytes themselves live only in the compiled matcher."""

    credential: str
    version: int
    label: str
    length: int


class _Hit(NamedTuple):
    start: int  # offsets in the stripped stream
    end: int
    needle: int


class KnownValues:
    """The needles of a vault's values, compiled once; scans any number of inputs."""

    def __init__(self, values: Mapping[str, Iterable[tuple[int, bytes]]], *, engine: str | None = None) -> None:
        """``values`` maps each credential name to its ``(version, value)`` pairs, retired ones included.

        A needle shared by two values is reported as the first one given. ``engine``
        forces a match engine (see ``engines.compile_matcher``).
        """
        owners: dict[bytes, _Needle] = {}
        for credential, versions in values.items():
            for version, value in versions:
                for needle, label in labelled_needles(bytes(value)).items():
                    owners.setdefault(needle, _Needle(credential, version, label, len(needle)))
        self._needles = list(owners.values())
        self._longest = max((needle.length for needle in self._needles), default=1)
        self._matcher = compile_matcher(list(owners), engine)

    @property
    def empty(self) -> bool:
        """True when there is nothing to search for (no values, or all too short)."""
        return not self._needles

    def scan_bytes(self, data: bytes, path: str) -> list[Finding]:
        """The vault values in ``data``, in order of position."""
        return list(self.scan_stream([data], path))

    def scan_stream(self, chunks: Iterable[bytes], path: str) -> Iterator[Finding]:
        """The vault values in a stream given in chunks, found also when split across chunks.

        Overlapping occurrences (a value's standalone base64 and its in-blob forms, say)
        are reported once, as the one starting first, then the longest, then the
        earliest in ``LABELS`` order. A finding is reported as soon as no longer or
        earlier occurrence can still arrive, so memory stays bounded by the longest needle.
        """
        stripper = AnsiStripper()
        stream = self._matcher.stream()
        lines = _LineTracker()
        pending: list[_Hit] = []
        covered = 0  # stripped offset up to which an occurrence was already reported
        scanned = 0  # stripped bytes searched so far
        last = False
        iterator = iter(chunks)
        while not last:
            chunk = next(iterator, None)
            last = chunk is None
            if chunk is not None:
                lines.feed(chunk)
            text = stripper.finish() if last else stripper.feed(chunk or b"")
            for needle, end in stream.scan(text):
                pending.append(_Hit(end - self._needles[needle].length, end, needle))
            scanned += len(text)
            # Every occurrence still to come ends after ``scanned``, so starts at or after ``settled``.
            settled = scanned + 1 - self._longest if not last else scanned + 1
            pending.sort(key=lambda hit: (hit.start, -(hit.end - hit.start), _RANK[self._needles[hit.needle].label]))
            while pending and pending[0].start < settled:
                hit = pending.pop(0)
                if hit.start >= covered:
                    covered = hit.end
                    yield self._finding(hit, path, stripper.offsets, lines)
            keep_from = max(0, min([settled, *(hit.start for hit in pending)]))
            lines.forget_before(stripper.offsets.to_original(keep_from))
            stripper.offsets.forget_before(keep_from)

    def _finding(self, hit: _Hit, path: str, offsets: OffsetMap, lines: _LineTracker) -> Finding:
        needle = self._needles[hit.needle]
        start = offsets.to_original(hit.start)
        end = offsets.to_original(hit.end - 1) + 1
        line, column = lines.position(start)
        name = printable_label(needle.credential)
        return Finding(
            detector=KNOWN, rule_id=RULE_ID,
            description=f"value of vault credential {name} (version {needle.version}, {needle.label})",
            path=path, line=line, column=column, start=start, end=end,
            fingerprint=f"{path}:{RULE_ID}:{needle.credential}:{needle.version}",
            credential=needle.credential, version=needle.version, encoding=needle.label)


# UTF-8 continuation bytes: deleting them leaves one byte per character.
_CONTINUATION = bytes(range(0x80, 0xC0))


def _characters(data: bytes) -> int:
    return len(data.translate(None, _CONTINUATION))


def advance_position(lines: int, column: int, data: bytes) -> tuple[int, int]:
    """Newlines seen and characters on the current line, after ``data`` follows a point
    with ``lines`` newlines before it and ``column`` characters on its line."""
    newlines = data.count(b"\n")
    if not newlines:
        return lines, column + _characters(data)
    return lines + newlines, _characters(data[data.rfind(b"\n") + 1:])


class _LineTracker:
    """1-based line and column (in UTF-8 characters) of recent offsets of a stream.

    Keeps only the bytes from the earliest offset still to be asked about, plus the
    line count and the characters of the current line before them.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._start = 0  # stream offset of the buffer's first byte
        self._lines = 0  # newlines before it
        self._column = 0  # characters between the last of those newlines and it

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk

    def position(self, offset: int) -> tuple[int, int]:
        lines, column = self._count(self._buffer[:offset - self._start])
        return lines + 1, column + 1

    def forget_before(self, offset: int) -> None:
        if offset <= self._start:
            return
        self._lines, self._column = self._count(self._buffer[:offset - self._start])
        self._buffer = self._buffer[offset - self._start:]
        self._start = offset

    def _count(self, prefix: bytes) -> tuple[int, int]:
        """Newlines and current-line characters at the end of ``prefix``, which follows the buffer start."""
        return advance_position(self._lines, self._column, prefix)
