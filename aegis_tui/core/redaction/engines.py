"""Multi-literal search over a stream, behind one small interface, engine picked at runtime.

Masking a child's output against thousands of needles has to keep up with a pipe, so
the fastest engine present is used: hyperscan (SIMD, native stream mode) where its
wheels exist, the Rust Aho-Corasick automaton of ``ahocorasick_rs`` everywhere else,
and a pure-Python search as the last resort, slow but dependency-free.
``AEGIS_VAULT_MATCH_ENGINE=hyperscan|ahocorasick|python`` forces one (tests run each).

Every engine reports every occurrence of every needle, overlapping ones included, as
``(needle index, absolute end offset)`` in the stream, also when an occurrence
straddles two chunks. Start offsets are not reported: the caller knows each needle's
length, which spares hyperscan its costly start-of-match tracking.
"""

from __future__ import annotations

import functools
import importlib
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

ENGINE_ENV = "AEGIS_VAULT_MATCH_ENGINE"
ENGINES = ("hyperscan", "ahocorasick", "python")

Match = tuple[int, int]  # (needle index, absolute end offset in the stream)
HYPERSCAN_PATTERN_LIMIT = 16_000  # characters; hyperscan refuses longer expressions


class MatchStream(Protocol):
    def scan(self, data: bytes) -> list[Match]:
        """Matches that end inside ``data``, the next chunk of the stream."""
        ...


class Matcher(Protocol):
    """Needles compiled once; each output stream opens its own ``MatchStream``."""

    name: str

    def stream(self) -> MatchStream: ...


def available_engines() -> list[str]:
    """The engines that can run here, fastest first."""
    modules = {"hyperscan": "hyperscan", "ahocorasick": "ahocorasick_rs", "python": None}
    return [name for name in ENGINES if modules[name] is None or _importable(modules[name])]


@functools.cache
def _importable(module: str) -> bool:
    """Really imported, not just found: hyperscan is installed on CPUs it then refuses to load on."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def chosen_engine() -> str | None:
    """The engine ``AEGIS_VAULT_MATCH_ENGINE`` forces, or None: the best one present."""
    return os.environ.get(ENGINE_ENV) or None


def compile_matcher(needles: Sequence[bytes], engine: str | None = None) -> Matcher:
    """Compile ``needles`` (non-empty byte strings) with ``engine``, the environment's choice, or the best one.

    With no needles there is nothing to search for, and the Python engine does that
    nothing without compiling anything. Needles too long for hyperscan go to the next
    engine, in a second matcher alongside it.
    """
    chosen = engine or chosen_engine()
    if chosen is not None and chosen not in ENGINES:
        raise ValueError(f"unknown match engine {chosen!r}: expected one of {', '.join(ENGINES)}")
    if not needles:
        return PythonMatcher(needles)
    if chosen is None:
        chosen = available_engines()[0]
    if chosen == "hyperscan":
        return _hyperscan_with_overflow(needles)
    if chosen == "ahocorasick":
        return AhoCorasickMatcher(needles)
    return PythonMatcher(needles)


def _hyperscan_with_overflow(needles: Sequence[bytes]) -> Matcher:
    """Hyperscan for every needle it accepts, the next engine for the oversized rest.

    hyperscan refuses expressions over 16,000 characters: the hex form of a secret over
    8 kB (a certificate bundle, say) is one. Such values are rare, so they are
    searched separately instead of moving the whole set to a slower engine.
    """
    fits = [index for index, needle in enumerate(needles) if _fits_hyperscan(needle)]
    if len(fits) == len(needles):
        return HyperscanMatcher(needles)
    oversize = sorted(set(range(len(needles))) - set(fits))
    fallback = "ahocorasick" if "ahocorasick" in available_engines() else "python"
    parts = [(compile_matcher([needles[index] for index in oversize], fallback), oversize)]
    if fits:
        parts.insert(0, (HyperscanMatcher([needles[index] for index in fits]), fits))
    return CombinedMatcher(parts)


class CombinedMatcher:
    """Several matchers over disjoint parts of one needle list, searched as one."""

    def __init__(self, parts: list[tuple[Matcher, list[int]]]) -> None:
        self._parts = parts  # (matcher, the original index of each of its needles)
        self.name = parts[0][0].name

    def stream(self) -> CombinedStream:
        return CombinedStream([(matcher.stream(), indexes) for matcher, indexes in self._parts])


class CombinedStream:
    def __init__(self, parts: list[tuple[MatchStream, list[int]]]) -> None:
        self._parts = parts

    def scan(self, data: bytes) -> list[Match]:
        return [(indexes[needle], end) for stream, indexes in self._parts for needle, end in stream.scan(data)]


# -- hyperscan ------------------------------------------------------------------------------
class HyperscanMatcher:
    """Needles as one hyperscan stream-mode database.

    The needles are compiled as regular expressions with every byte but letters and
    digits escaped, not with hyperscan's pure-literal mode: hyperscan 0.9.1 measures literals with ``strlen``, so a
    needle holding a NUL byte would be cut short there.
    """

    name = "hyperscan"

    def __init__(self, needles: Sequence[bytes]) -> None:
        import hyperscan

        self.database: Any = hyperscan.Database(mode=hyperscan.HS_MODE_STREAM)
        self.database.compile(expressions=[literal_pattern(needle) for needle in needles], ids=list(range(len(needles))),
                              flags=0)
        # Closing a stream uses the database's own scratch space (0.9.1's Stream.close
        # cannot take another); two threads closing at once must not share it.
        self.close_lock = threading.Lock()

    def stream(self) -> HyperscanStream:
        return HyperscanStream(self)


class HyperscanStream:
    """One hyperscan stream with its own scratch space, so two streams can scan in parallel.

    hyperscan 0.9.1 keeps only borrowed pointers to the match callback and the database
    of a stream: if either is freed while the stream lives, the next match calls freed
    memory and the process crashes (a bound method passed inline is enough to do it).
    The finalizer that closes the stream holds both, so they live exactly as long as
    the stream. (``Database.stream`` also leaks one reference to its Python ``Stream``
    object, about a hundred bytes per stream; the hyperscan state itself is freed.)
    """

    def __init__(self, matcher: HyperscanMatcher) -> None:
        found: list[Match] = []

        def on_match(needle: int, _start: int, end: int, _flags: int, _context: object) -> None:
            found.append((needle, end))

        self._found = found
        self._scratch = matcher.database.scratch.clone()
        self._stream = matcher.database.stream(match_event_handler=on_match)
        self._stream.__enter__()  # opens the hyperscan stream
        weakref.finalize(self, _close_hyperscan_stream, self._stream, matcher.close_lock, (matcher, on_match))

    def scan(self, data: bytes) -> list[Match]:
        self._stream.scan(data, scratch=self._scratch)
        if not self._found:
            return []
        matches = self._found.copy()
        self._found.clear()
        return matches


def _close_hyperscan_stream(stream: Any, lock: threading.Lock, _keep_alive: tuple[object, ...]) -> None:
    """Free the stream's state; ``_keep_alive`` holds what the stream borrows until this has run."""
    with lock:
        stream.close()


_ESCAPED = [
    bytes([byte]) if bytes([byte]).isalnum() else b"\\" + bytes([byte]) if 0x20 <= byte < 0x7F else b"\\x%02x" % byte
    for byte in range(256)
]


def _fits_hyperscan(needle: bytes) -> bool:
    if len(needle) * 4 <= HYPERSCAN_PATTERN_LIMIT:  # no byte escapes to more than 4 characters
        return True
    return len(needle) <= HYPERSCAN_PATTERN_LIMIT and len(literal_pattern(needle)) <= HYPERSCAN_PATTERN_LIMIT


def literal_pattern(needle: bytes) -> bytes:
    """``needle`` as a hyperscan pattern matching exactly its bytes, as short as possible.

    Letters and digits stand for themselves; a backslash makes any other printable
    character literal; every other byte is written as ``\\xHH``.
    """
    if needle.isalnum():  # the common case: base64 and hex forms, most tokens
        return needle
    return b"".join(_ESCAPED[byte] for byte in needle)


# -- Aho-Corasick and pure Python: a stateless search plus a carried-over tail --------------
class RescanStream:
    """Stream matching for a search that only sees one buffer at a time.

    The last (longest needle - 1) bytes of the stream are kept and searched again in
    front of the next chunk, so an occurrence straddling the boundary is found; an
    occurrence that ends inside the kept tail was already reported by the previous
    scan, so only matches ending beyond it are new.
    """

    def __init__(self, find_all: Callable[[bytes], Iterator[Match]], keep: int) -> None:
        self._find_all = find_all
        self._keep = keep
        self._tail = b""
        self._seen = 0  # bytes of the stream scanned so far

    def scan(self, data: bytes) -> list[Match]:
        window = self._tail + data
        base = self._seen - len(self._tail)
        new_from = len(self._tail)
        matches = [(needle, base + end) for needle, end in self._find_all(window) if end > new_from]
        self._seen += len(data)
        self._tail = window[-self._keep:] if self._keep else b""
        return matches


class AhoCorasickMatcher:
    name = "ahocorasick"

    def __init__(self, needles: Sequence[bytes]) -> None:
        import ahocorasick_rs

        # The standard match kind, which allows overlapping matches. A contiguous NFA, not
        # the library's automatic choice: that picks a DFA for a few long needles, and a
        # DFA for a 64 kB secret's needles takes seconds to build.
        self._automaton = ahocorasick_rs.BytesAhoCorasick(
            list(needles), implementation=ahocorasick_rs.Implementation.ContiguousNFA)
        self._keep = max(len(needle) for needle in needles) - 1

    def _find_all(self, haystack: bytes) -> Iterator[Match]:
        for needle, _start, end in self._automaton.find_matches_as_indexes(haystack, overlapping=True):
            yield needle, end

    def stream(self) -> RescanStream:
        return RescanStream(self._find_all, self._keep)


class PythonMatcher:
    """``bytes.find`` for each needle: correct, dependency-free, and far too slow for bulk output."""

    name = "python"

    def __init__(self, needles: Sequence[bytes]) -> None:
        self._needles = list(needles)
        self._keep = max((len(needle) for needle in needles), default=1) - 1

    def _find_all(self, haystack: bytes) -> Iterator[Match]:
        for index, needle in enumerate(self._needles):
            at = haystack.find(needle)
            while at >= 0:
                yield index, at + len(needle)
                at = haystack.find(needle, at + 1)

    def stream(self) -> RescanStream:
        return RescanStream(self._find_all, self._keep)
