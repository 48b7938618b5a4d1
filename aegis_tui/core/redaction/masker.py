"""Replace every secret value in a byte stream with ``[aegis:NAME]``, chunk by chunk.

``aegis-vault run -- CMD`` pipes the child's output through a ``MaskStream``. Output
arrives in arbitrary pieces, so a value may be split across two reads; to catch it
before any of it is shown, the stream holds back the last (longest needle - 1) bytes
it has received: no needle can start before that point and still be unseen.

Occurrences that overlap or touch merge into one masked span, shown as the label of
the occurrence that starts first (the longest one on ties), exactly what a single pass
over the whole output would give.

Holding bytes back must not freeze an interactive child: when it goes quiet (a prompt
without a newline) the caller ``flush()``es, and the held-back bytes are shown. The
price: a value split across such a pause leaks the part shown before the pause; once
the rest arrives, only that rest is masked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from aegis_tui.core.redaction.encodings import needles_for
from aegis_tui.core.secret import Secret
from aegis_tui.core.redaction.engines import MatchStream, compile_matcher

Span = tuple[int, int, int]  # (absolute start, absolute end, needle index)


def printable_label(label: str) -> str:
    """``label`` with every non-printable character (control, escape, bidi override) as ``?``.

    Labels are credential names chosen by a user and written into a terminal: an
    escape sequence in one must not reach it.
    """
    return "".join(char if char.isprintable() else "?" for char in label)


class Masker:
    """Compiled once per set of secrets; cheap to open streams from."""

    def __init__(self, secrets: Mapping[str, Iterable[bytes]], *, engine: str | None = None) -> None:
        """``secrets`` maps each label to the values (all active versions) hidden under ``[aegis:label]``.

        A needle shared by two labels is shown under the first label that has it.
        ``engine`` forces a match engine (see ``engines.compile_matcher``).
        """
        owner: dict[bytes, str] = {}
        for label, values in secrets.items():
            for value in values:
                for needle in sorted(needles_for(bytes(value))):
                    owner.setdefault(needle, label)
        self._needles = list(owner)
        self._labels = list(owner.values())
        self._lengths = [len(needle) for needle in self._needles]
        replacement = {label: f"[aegis:{printable_label(label)}]".encode() for label in secrets}
        self._replacements = [replacement[label] for label in self._labels]
        self._hold = max(self._lengths, default=1) - 1
        self._matcher = compile_matcher(self._needles, engine)

    @classmethod
    def for_versions(cls, values: Mapping[str, Iterable[tuple[int, Secret]]]) -> Masker:
        """From ``Credentials.values``: credential name -> (version, value) pairs."""
        return cls({name: [secret.reveal() for _, secret in pairs] for name, pairs in values.items()})

    @property
    def empty(self) -> bool:
        """True when there is nothing to mask (no values, or all too short)."""
        return not self._needles

    @property
    def engine(self) -> str:
        return self._matcher.name

    def stream(self) -> MaskStream:
        return MaskStream(self, self._matcher.stream())


class MaskStream:
    """One output stream being masked; ``feed`` and ``flush`` give the bytes safe to emit."""

    def __init__(self, masker: Masker, scanner: MatchStream) -> None:
        self.hits: Counter[str] = Counter()
        self._scanner = scanner
        self._lengths = masker._lengths
        self._labels = masker._labels
        self._replacements = masker._replacements
        self._hold = masker._hold
        self._tail = b""  # received, not yet emitted; starts at absolute offset self._done
        self._done = 0  # bytes of the input emitted or masked so far
        self._received = 0
        self._spans: list[Span] = []  # occurrences found, not yet masked, by start (longest first)
        # End of the last masked span. While no byte after it has been emitted (it is >= the
        # emit position), the span is open: an occurrence overlapping or touching it joins it.
        self._masked_until = -1

    def feed(self, data: bytes) -> bytes:
        """The bytes that are safe to emit now; at most (longest needle - 1) are held back."""
        if not data:
            return b""
        found = self._scanner.scan(data)
        if found:
            lengths = self._lengths
            self._spans.extend((end - lengths[needle], end, needle) for needle, end in found)
            self._spans.sort(key=lambda span: (span[0], span[0] - span[1]))
        self._received += len(data)
        return self._advance(data, self._received - self._hold)

    def flush(self) -> bytes:
        """Emit everything held back: the child went idle, or reached the end of its output."""
        return self._advance(b"", self._received)

    def _advance(self, data: bytes, cutoff: int) -> bytes:
        """Emit the input up to absolute offset ``cutoff``, masked; keep the rest as the tail.

        From ``feed``, every occurrence starting before ``cutoff`` has been found: it ends
        at most (longest needle) bytes after its start, within what was received. From
        ``flush``, one may have started without ending yet: the leak the module describes.
        """
        base, tail = self._done, self._tail
        if cutoff <= base:
            self._tail = tail + data
            return b""
        pieces: list[bytes | memoryview] = []
        view = memoryview(data)

        def take(start: int, end: int) -> None:  # absolute [start, end) of tail + data
            start, end = start - base, end - base
            split = len(tail)
            if start < split:
                pieces.append(tail[start:min(end, split)])
            if end > split:
                pieces.append(view[max(start, split) - split:end - split])

        at = base
        spans = self._spans
        used = 0
        for start, end, needle in spans:
            if start >= cutoff:
                break
            used += 1
            if self._masked_until >= at:  # the last masked span is still open
                if start <= self._masked_until:  # overlaps or touches it: one span
                    self._masked_until = max(self._masked_until, end)
                    continue
                at = self._masked_until
            if start > at:
                take(at, start)
                at = start
            # start < at only after a flush emitted the beginning of this occurrence
            pieces.append(self._replacements[needle])
            self.hits[self._labels[needle]] += 1
            self._masked_until = end
        del spans[:used]
        if self._masked_until >= at:
            at = min(self._masked_until, cutoff)
        if at < cutoff:
            take(at, cutoff)
        self._done = cutoff
        rest = cutoff - base - len(tail)
        self._tail = data[rest:] if rest >= 0 else tail[rest:] + data
        return b"".join(pieces)
