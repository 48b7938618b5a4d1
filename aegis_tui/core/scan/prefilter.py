"""Where each rule could match, found for all rules in one hyperscan pass, so that
Python's ``re`` only confirms the few lines around each place.

Running thirty regexes over every file whose text holds one of their keywords is what
made rule scanning slow: keywords such as ``key`` or ``token`` are in nearly every
file. hyperscan runs all the rules at once, at hundreds of MB/s, and reports where a
match could end; ``re`` then runs over those lines only, and stays the single judge
of what a rule matches (groups, entropy, allowlists all work on its match).

The windows never lose a match that ``re`` would find in the whole text:

- hyperscan gets each rule's regex with its lookarounds taken out. A lookaround only
  forbids matches, so without it every match of the rule is still a match, with the
  same end. hyperscan reports every end offset of every match.
- A rule's *reach* says where a match ending at a reported offset can start: on the
  same line when the regex cannot match a newline, within its maximum width when that
  is bounded, else anywhere before. The window runs from there to the end of the line.
- Rules anchored to the end of the text (``$``, ``\\Z``), rules hyperscan can only run
  as an approximate prefilter, and rules it cannot compile at all are confirmed over
  the whole text, as before: the first two only when hyperscan saw a hit.

Text that is not ASCII is scanned as UTF-8 with hyperscan's UTF-8 mode, so a repeat
counts characters as ``re`` does; the rules' classes are ASCII (``re.ASCII``) in both.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aegis_tui.core.redaction.engines import available_engines, chosen_engine, literal_pattern

if TYPE_CHECKING:
    from aegis_tui.core.scan.rules import Rule

Window = tuple[int, int]  # character offsets: start, end (exclusive), whole lines

# How far back from the end of a match its start can be.
LINE = "line"  # the match cannot hold a newline: it starts on the line it ends on
WIDTH = "width"  # at most ``width`` characters back
BEFORE = "before"  # anywhere before its end
WHOLE = "whole"  # anchored to the end of the text: confirm over all of it
PREFILTER = "prefilter"  # hyperscan only approximates the rule: confirm over all of it on a hit
_UNBOUNDED = 1 << 16  # widths beyond this are treated as unbounded
_MAX_UTF8 = 4  # bytes per character at most


@dataclass(frozen=True)
class Reach:
    kind: str
    width: int = 0


def reach_of(regex: re.Pattern[str]) -> Reach:
    """How far back a match of ``regex`` can start, from its parse tree. Anything this
    does not understand gets the widest reach, which is always correct, only slower."""
    try:
        from re import _constants as constants, _parser as parser  # type: ignore[attr-defined]

        tree = parser.parse(regex.pattern, regex.flags)
        if _anchored_at_end(tree, constants):
            return Reach(WHOLE)
        if not _can_match_newline(tree, bool(regex.flags & re.DOTALL), constants):
            return Reach(LINE)
        width = tree.getwidth()[1]
    except Exception:  # a private module of the standard library: if it changes, be safe
        return Reach(WHOLE)
    return Reach(WIDTH, width) if width <= _UNBOUNDED else Reach(BEFORE)


def _children(op: Any, av: Any, constants: Any) -> list[Any]:
    """The sub-patterns of one parse-tree node that consume text (lookarounds do not)."""
    if op is constants.SUBPATTERN:
        return [av[3]]
    if op is constants.BRANCH:
        return list(av[1])
    if op in (constants.MAX_REPEAT, constants.MIN_REPEAT, constants.POSSESSIVE_REPEAT):
        return [av[2]]
    if op is constants.ATOMIC_GROUP:
        return [av]
    if op is constants.GROUPREF_EXISTS:
        return [branch for branch in av[1:] if branch is not None]
    return []


def _anchored_at_end(tree: Any, constants: Any) -> bool:
    ends = (constants.AT_END, constants.AT_END_STRING, constants.AT_BEGINNING_STRING)
    for op, av in tree:
        if op is constants.AT and av in ends:
            return True
        if op in (constants.ASSERT, constants.ASSERT_NOT):
            if _anchored_at_end(av[1], constants):
                return True
        if any(_anchored_at_end(child, constants) for child in _children(op, av, constants)):
            return True
    return False


def _can_match_newline(tree: Any, dotall: bool, constants: Any) -> bool:
    newline = ord("\n")
    spaces = {constants.CATEGORY_SPACE, constants.CATEGORY_NOT_DIGIT, constants.CATEGORY_NOT_WORD,
              constants.CATEGORY_LINEBREAK}
    for op, av in tree:
        if op is constants.LITERAL and av == newline or op is constants.NOT_LITERAL and av != newline:
            return True
        if op is constants.ANY and dotall or op in (constants.GROUPREF, constants.CATEGORY):
            return True
        if op is constants.IN:
            negated = any(item_op is constants.NEGATE for item_op, _ in av)
            holds = any(
                item_op is constants.LITERAL and item == newline
                or item_op is constants.RANGE and item[0] <= newline <= item[1]
                or item_op is constants.CATEGORY and item in spaces
                for item_op, item in av
            )
            if holds != negated:
                return True
        if op is constants.SUBPATTERN and av[1] & re.DOTALL:
            if _can_match_newline(av[3], True, constants):
                return True
        elif any(_can_match_newline(child, dotall, constants) for child in _children(op, av, constants)):
            return True
    return False


def without_lookarounds(pattern: str) -> str:
    """``pattern`` with every ``(?=…)``, ``(?!…)``, ``(?<=…)`` and ``(?<!…)`` removed;
    hyperscan runs no lookarounds, and without them a regex only matches more."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith(("(?=", "(?!", "(?<=", "(?<!"), index):
            index = _group_end(pattern, index)
            continue
        step = _token_end(pattern, index)
        out.append(pattern[index:step])
        index = step
    return "".join(out)


_BOUNDED_REPEAT = re.compile(r"\{(\d+),\d+\}")
_LONG_EXACT_REPEAT = re.compile(r"\{(\d{3,})\}")


def widened_repeats(pattern: str) -> str:
    """``pattern`` with each bounded repeat ``{m,n}`` (and each exact one of 100 or more)
    made ``{m,}``: the same matches and more. hyperscan compiles unbounded repeats
    quickly, where large bounded ones are "too large" (``[^\\s]{8,200}`` in its UTF-8
    mode) or take minutes to compile (``[\\s\\S]{32,16384}``)."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        repeat = None
        if pattern[index] == "{":
            repeat = _BOUNDED_REPEAT.match(pattern, index) or _LONG_EXACT_REPEAT.match(pattern, index)
        step = repeat.end() if repeat else _token_end(pattern, index)
        out.append("{%s,}" % repeat.group(1) if repeat else pattern[index:step])
        index = step
    return "".join(out)


def _token_end(pattern: str, index: int) -> int:
    """The end of the escape, character class or single character at ``index``."""
    if pattern[index] == "\\":
        return index + 2
    if pattern[index] != "[":
        return index + 1
    index += 1
    if pattern.startswith("^", index):
        index += 1
    if pattern.startswith("]", index):
        index += 1
    while index < len(pattern) and pattern[index] != "]":
        index += 2 if pattern[index] == "\\" else 1
    return index + 1


def _group_end(pattern: str, index: int) -> int:
    """The end of the parenthesised group opening at ``index``."""
    depth = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index = _token_end(pattern, index)
    return index


@dataclass
class Plan:
    """What one pass of hyperscan found: the keywords present (indexes into the
    prefilter's ``keywords``) and, per rule index, the windows its regex must confirm;
    ``None`` means the whole text."""

    keywords: set[int]
    windows: dict[int, list[Window] | None]


class RulePrefilter:
    """All rules and keywords in one hyperscan database (one for ASCII text, one in
    UTF-8 mode for the rest, each compiled when first needed)."""

    def __init__(self, rules: Sequence[Rule], keywords: Sequence[str]) -> None:
        import hyperscan

        self._hyperscan = hyperscan
        self.keywords = list(keywords)
        self._keyword_base = len(rules)  # hyperscan ids: rules by index, then keywords
        self._patterns = {index: rule.regex.pattern for index, rule in enumerate(rules) if rule.regex is not None}
        self._reaches = {index: reach_of(rule.regex) for index, rule in enumerate(rules) if rule.regex is not None}
        self._databases: dict[bool, tuple[Any, dict[int, str], set[int]]] = {}
        self._compile_lock = threading.Lock()
        self._local = threading.local()

    @staticmethod
    def available() -> bool:
        """hyperscan is importable here and not switched off (``AEGIS_VAULT_MATCH_ENGINE``)."""
        return chosen_engine() in (None, "hyperscan") and "hyperscan" in available_engines()

    def compile_all(self) -> None:
        """Both databases now: before forking workers, so each inherits them compiled."""
        self._database(utf8=False)
        self._database(utf8=True)

    def plan(self, text: str) -> Plan:
        is_ascii = text.isascii()
        data = text.encode("ascii" if is_ascii else "utf-8")
        database, kinds, uncompiled = self._database(utf8=not is_ascii)
        keyword_base = self._keyword_base
        keywords: set[int] = set()
        windows: dict[int, list[list[int]]] = {}
        size = len(data)
        back = 1 if is_ascii else _MAX_UTF8

        def on_match(index: int, _start: int, end: int, _flags: int, _context: object) -> None:
            if index >= keyword_base:
                keywords.add(index - keyword_base)
                return
            kind = kinds[index]
            last = max(end - 1, 0)
            found = windows.get(index)
            newest = found[-1] if found else None
            if newest is not None and newest[0] <= last < newest[1] and kind != WIDTH:
                return  # inside the window already open, which starts early enough
            if kind in (WHOLE, PREFILTER):
                windows[index] = [[0, size]]
                return
            line_end = data.find(b"\n", last)
            line_end = size if line_end < 0 else line_end + 1
            if kind == LINE:
                start = data.rfind(b"\n", 0, last) + 1
            elif kind == BEFORE:
                start = 0
            else:
                start = data.rfind(b"\n", 0, max(0, end - self._reaches[index].width * back)) + 1
            if newest is not None and start <= newest[1]:
                newest[0] = min(newest[0], start)
                newest[1] = max(newest[1], line_end)
            else:
                windows.setdefault(index, []).append([start, line_end])

        if database is not None:
            database.scan(data, match_event_handler=on_match, scratch=self._scratch(database))
        chars = _CharOffsets(data) if not is_ascii else None
        result: dict[int, list[Window] | None] = {index: None for index in uncompiled}
        for index, spans in windows.items():
            merged = _merge(spans)
            result[index] = merged if chars is None else [(chars(start), chars(end)) for start, end in merged]
        return Plan(keywords, result)

    def _database(self, utf8: bool) -> tuple[Any, dict[int, str], set[int]]:
        with self._compile_lock:
            if utf8 not in self._databases:
                self._databases[utf8] = self._compile(utf8)
            return self._databases[utf8]

    def _compile(self, utf8: bool) -> tuple[Any, dict[int, str], set[int]]:
        """Each rule's regex without lookarounds and with its bounded repeats widened where
        hyperscan takes it, else in hyperscan's prefilter mode (a superset of its matches,
        ends not exact), else nothing: those rules are confirmed over the whole text."""
        hs = self._hyperscan
        base_flags = hs.HS_FLAG_UTF8 if utf8 else 0
        expressions: list[bytes] = []
        ids: list[int] = []
        flags: list[int] = []
        kinds: dict[int, str] = {}
        uncompiled: set[int] = set()
        for index, pattern in self._patterns.items():
            chosen = None
            relaxed = widened_repeats(without_lookarounds(pattern))
            for candidate, extra, kind in ((relaxed, 0, self._reaches[index].kind),
                                           (pattern, hs.HS_FLAG_PREFILTER, PREFILTER)):
                if _compiles(hs, candidate, base_flags | extra):
                    chosen = (candidate, extra, kind)
                    break
            if chosen is None:
                uncompiled.add(index)
                continue
            expressions.append(chosen[0].encode("utf-8"))
            ids.append(index)
            flags.append(base_flags | chosen[1])
            kinds[index] = chosen[2]
        for offset, word in enumerate(self.keywords):
            expressions.append(literal_pattern(word.encode("utf-8")))
            ids.append(self._keyword_base + offset)
            flags.append(base_flags | hs.HS_FLAG_CASELESS | hs.HS_FLAG_SINGLEMATCH)
        if not expressions:  # path-only rules, and no keywords: nothing for hyperscan to do
            return None, kinds, uncompiled
        database = hs.Database(mode=hs.HS_MODE_BLOCK)
        database.compile(expressions=expressions, ids=ids, elements=len(expressions), flags=flags)
        return database, kinds, uncompiled

    def _scratch(self, database: Any) -> Any:
        """A scratch space per thread and database: hyperscan's scratch is not shared."""
        cache = getattr(self._local, "scratch", None)
        if cache is None:
            cache = self._local.scratch = {}
        if id(database) not in cache:
            cache[id(database)] = database.scratch.clone()
        return cache[id(database)]


def _compiles(hs: Any, pattern: str, flags: int) -> bool:
    database = hs.Database(mode=hs.HS_MODE_BLOCK)
    try:
        database.compile(expressions=[pattern.encode("utf-8")], ids=[0], elements=1, flags=[flags])
    except hs.error:
        return False
    return True


def _merge(spans: list[list[int]]) -> list[Window]:
    merged: list[Window] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class _CharOffsets:
    """Byte offsets in UTF-8 ``data`` to character offsets, for offsets on character
    boundaries (line starts and ends are), visited in increasing order mostly."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.byte = 0
        self.char = 0

    def __call__(self, offset: int) -> int:
        if offset >= self.byte:
            self.char += len(self.data[self.byte:offset].decode("utf-8"))
        else:
            self.char -= len(self.data[offset:self.byte].decode("utf-8"))
        self.byte = offset
        return self.char
