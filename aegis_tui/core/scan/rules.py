"""Provider and generic rules for the leak scanner, in gitleaks' rule schema.

The schema is gitleaks' so that people can reuse what they already have: a team's
gitleaks config, or a few ``[[rules]]`` of their own, merge with the rules shipped in
``default_rules.toml``. gitleaks writes Go RE2 regexes; the few RE2 spellings Python's
``re`` lacks are translated on load, and a regex that still does not compile is a
``UsageError`` naming its rule, so a typo never silently disables a rule.

Like gitleaks, a rule runs only on text holding one of its keywords. Where hyperscan is
present it finds the keywords and, for all rules in the same pass, the lines where each
could match, so Python's ``re`` confirms only those lines (``prefilter.py``); elsewhere
an Aho-Corasick automaton finds the keywords and each remaining regex runs over all the
text. Regexes are compiled with ``re.ASCII``: ``\\w``, ``\\s``, ``\\d`` and ``\\b`` mean what
they mean in RE2, the engine gitleaks' rules are written for.
"""

from __future__ import annotations

import math
import re
import tomllib
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import ahocorasick_rs

from aegis_tui.core.crypto import sha256
from aegis_tui.core.errors import UsageError
from aegis_tui.core.scan.findings import RULE, Finding
from aegis_tui.core.scan.prefilter import RulePrefilter, Window

DEFAULT_RULES = Path(__file__).with_name("default_rules.toml")
INLINE_ALLOW = "aegis:allow"
_TARGETS = ("secret", "match", "line")
# RE2 spellings Python's ``re`` does not know, and their Python equivalents.
_POSIX_CLASSES = {
    "[:alnum:]": "a-zA-Z0-9", "[:alpha:]": "a-zA-Z", "[:digit:]": "0-9", "[:xdigit:]": "0-9a-fA-F",
    "[:upper:]": "A-Z", "[:lower:]": "a-z", "[:space:]": r"\s", "[:word:]": r"\w",
}


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``: random tokens score high, words and placeholders low."""
    if not text:
        return 0.0
    size = len(text)
    return -sum(count / size * math.log2(count / size) for count in Counter(text).values())


@dataclass(frozen=True)
class Allowlist:
    """Reasons a candidate is not a leak. Any one criterion that holds allows it (gitleaks'
    default "OR" condition)."""

    regexes: tuple[re.Pattern[str], ...] = ()
    paths: tuple[re.Pattern[str], ...] = ()
    stopwords: tuple[str, ...] = ()  # lower-cased; a secret containing one is allowed
    regex_target: str = "secret"

    def allows(self, path: str, secret: str, match: str, line: str) -> bool:
        if any(pattern.search(path) for pattern in self.paths):
            return True
        target = {"secret": secret, "match": match, "line": line}[self.regex_target]
        if any(pattern.search(target) for pattern in self.regexes):
            return True
        lowered = secret.lower()
        return any(word in lowered for word in self.stopwords)


@dataclass(frozen=True)
class Rule:
    """One detector: a regex, which group of it is the secret, and what may excuse a match."""

    id: str
    description: str
    regex: re.Pattern[str] | None  # None: a path-only rule (the file itself is the finding)
    secret_group: int | None = None  # None: the first group that matched, else the whole match
    entropy: float | None = None
    keywords: tuple[str, ...] = ()
    path: re.Pattern[str] | None = None
    allowlists: tuple[Allowlist, ...] = ()

    def secret_span(self, match: re.Match[str]) -> tuple[int, int] | None:
        """Where the secret is inside ``match``; None when the named group did not take part."""
        if self.secret_group is not None:
            span = match.span(self.secret_group)
            return None if span[0] < 0 else span
        for group in range(1, (match.re.groups or 0) + 1):
            start, end = match.span(group)
            if end > start:
                return start, end
        return match.span()


@dataclass(frozen=True)
class RuleSet:
    """Rules plus the global allowlists that apply to all of them, ready to scan text."""

    rules: tuple[Rule, ...] = ()
    allowlists: tuple[Allowlist, ...] = ()

    def merge(self, other: RuleSet) -> RuleSet:
        """Rules of ``other`` replace ours with the same id (that is how a user overrides a
        default rule) and its new rules go first, so they win over ours, the generic rule
        included, where both match; both sets of global allowlists apply."""
        replaced = {rule.id: rule for rule in other.rules}
        kept = tuple(replaced.pop(rule.id, rule) for rule in self.rules)
        added = tuple(rule for rule in other.rules if rule.id in replaced)
        return RuleSet(added + kept, self.allowlists + other.allowlists)

    @cached_property
    def _keywords(self) -> list[str]:
        return sorted({word for rule in self.rules for word in rule.keywords})

    @cached_property
    def _automaton(self) -> ahocorasick_rs.AhoCorasick | None:
        return ahocorasick_rs.AhoCorasick(self._keywords) if self._keywords else None

    @cached_property
    def prefilter(self) -> RulePrefilter | None:
        """hyperscan's plan of where to run each regex; None where hyperscan is missing."""
        return RulePrefilter(self.rules, self._keywords) if RulePrefilter.available() else None

    def scan(self, text: str, path: str) -> list[Finding]:
        """Every finding in ``text`` (read from ``path``), in order of position. Where two
        rules report overlapping secrets, the one listed first wins: the provider rules come
        before the generic ones, so ``TOKEN=ghp_...`` is one GitHub finding, not two."""
        located = _Located(text)
        findings: list[Finding] = []
        taken: list[tuple[int, int]] = []
        for rule, windows in self._searches(text, path):
            for start, end, match in _candidate_spans(rule, text, path, windows):
                secret = text[start:end] if rule.regex is not None else path
                if not self._reportable(rule, path, secret, match, located.line_of(start, end)):
                    continue
                if any(start < t_end and t_start < end for t_start, t_end in taken):
                    continue
                taken.append((start, end))
                findings.append(located.finding(rule, path, start, end, secret))
        return sorted(findings, key=lambda finding: (finding.start, finding.rule_id))

    def _searches(self, text: str, path: str) -> Iterator[tuple[Rule, list[Window] | None]]:
        """The rules worth running on ``text`` (their path matches, one of their keywords
        is present), each with the windows its regex must search: None for all the text."""
        plan = self.prefilter.plan(text) if self.prefilter is not None else None
        if plan is not None:
            present = {self._keywords[index] for index in plan.keywords}
        elif self._automaton is not None:
            found = self._automaton.find_matches_as_indexes(text.lower(), overlapping=True)
            present = {self._keywords[index] for index, _, _ in found}
        else:
            present = set()
        for index, rule in enumerate(self.rules):
            if rule.path is not None and not rule.path.search(path):
                continue
            if rule.keywords and not present.intersection(rule.keywords):
                continue
            if plan is None or rule.regex is None:
                yield rule, None
            elif index in plan.windows:
                yield rule, plan.windows[index]

    def _reportable(self, rule: Rule, path: str, secret: str, match: str, line: str) -> bool:
        if rule.entropy is not None and shannon_entropy(secret) < rule.entropy:
            return False
        if INLINE_ALLOW in line:
            return False
        return not any(allow.allows(path, secret, match, line) for allow in self.allowlists + rule.allowlists)


def _candidate_spans(rule: Rule, text: str, path: str, windows: list[Window] | None) -> Iterable[tuple[int, int, str]]:
    """(secret start, secret end, whole match) for each regex match of ``rule`` in
    ``windows`` of ``text`` (all of it for None)."""
    if rule.regex is None:
        yield 0, 0, path
        return
    for start, end in windows if windows is not None else [(0, len(text))]:
        for match in rule.regex.finditer(text, start, end):
            span = rule.secret_span(match)
            if span is not None and span[1] > span[0]:
                yield span[0], span[1], match.group(0)


class _Located:
    """Turns character offsets into the 1-based line/column and UTF-8 byte offsets a
    ``Finding`` carries. Lines are counted on demand from the nearest line already
    counted: listing every line start of a large file costs more than its few findings."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.ascii = text.isascii()
        self._starts = [0]  # line starts already counted, in order ...
        self._numbers = [1]  # ... and their line numbers
        self._chars = [0]  # character offsets already converted to bytes, in order ...
        self._bytes = [0]  # ... and their byte offsets

    def line_of(self, start: int, end: int) -> str:
        """The full line(s) the span lies on, without the trailing newline."""
        first = self.text.rfind("\n", 0, start) + 1
        last = self.text.find("\n", max(end - 1, start))
        return self.text[first:] if last < 0 else self.text[first:last]

    def line_number(self, line_start: int) -> int:
        nearest = bisect_right(self._starts, line_start) - 1
        number = self._numbers[nearest] + self.text.count("\n", self._starts[nearest], line_start)
        self._starts.insert(nearest + 1, line_start)
        self._numbers.insert(nearest + 1, number)
        return number

    def byte_offset(self, index: int) -> int:
        """Counted from the nearest offset already converted, as line numbers are: encoding
        the whole prefix for each finding is quadratic in a long non-ASCII file."""
        if self.ascii:
            return index
        nearest = bisect_right(self._chars, index) - 1
        offset = self._bytes[nearest] + len(self.text[self._chars[nearest]:index].encode("utf-8"))
        self._chars.insert(nearest + 1, index)
        self._bytes.insert(nearest + 1, offset)
        return offset

    def finding(self, rule: Rule, path: str, start: int, end: int, secret: str) -> Finding:
        line_start = self.text.rfind("\n", 0, start) + 1
        digest = sha256(secret.encode("utf-8")).hex()[:16]
        return Finding(
            detector=RULE, rule_id=rule.id, description=rule.description, path=path,
            line=self.line_number(line_start), column=start - line_start + 1,
            start=self.byte_offset(start), end=self.byte_offset(end),
            fingerprint=f"{path}:{rule.id}:{digest}",
        )


def default_rules() -> RuleSet:
    """The rules shipped with aegis-vault (``default_rules.toml`` beside this module)."""
    return load_rules(DEFAULT_RULES)


def load_rules(source: Path | str) -> RuleSet:
    """Rules from a gitleaks-style TOML file (a ``Path``) or TOML text (a ``str``)."""
    name = str(source) if isinstance(source, Path) else "<rules>"
    try:
        text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
        data = tomllib.loads(text)
    except OSError as err:
        raise UsageError(f"cannot read rules file {name}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"rules file {name} is not valid TOML: {err}") from None
    rules = [_parse_rule(raw, index) for index, raw in enumerate(data.get("rules", []))]
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise UsageError(f"rules file {name}: rule id {rule.id!r} appears twice")
        seen.add(rule.id)
    return RuleSet(tuple(rules), _parse_allowlists(data, "global allowlist"))


def _parse_rule(raw: Any, index: int) -> Rule:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str) or not raw["id"]:
        raise UsageError(f"rule number {index + 1} has no id")
    rule_id = raw["id"]
    where = f"rule {rule_id!r}"
    regex = _compile(raw["regex"], where) if "regex" in raw else None
    path = _compile(raw["path"], where + " path") if "path" in raw else None
    if regex is None and path is None:
        raise UsageError(f"{where} has neither a regex nor a path")
    secret_group = raw.get("secretGroup")
    if secret_group is not None:
        groups = regex.groups if regex is not None else 0
        if not isinstance(secret_group, int) or not 0 <= secret_group <= groups:
            raise UsageError(f"{where}: secretGroup {secret_group!r} is not a group of its regex")
    entropy = raw.get("entropy")
    if entropy is not None and not isinstance(entropy, (int, float)):
        raise UsageError(f"{where}: entropy must be a number")
    return Rule(
        id=rule_id,
        description=str(raw.get("description", "")),
        regex=regex,
        secret_group=secret_group,
        entropy=None if entropy is None else float(entropy),
        keywords=tuple(word.lower() for word in _strings(raw.get("keywords", []), where + " keywords")),
        path=path,
        allowlists=_parse_allowlists(raw, where),
    )


def _parse_allowlists(table: Mapping[str, Any], where: str) -> tuple[Allowlist, ...]:
    """``allowlist`` (one table) and ``allowlists`` (an array of tables), both accepted."""
    raw_lists = ([table["allowlist"]] if "allowlist" in table else []) + list(table.get("allowlists", []))
    parsed = []
    for raw in raw_lists:
        target = raw.get("regexTarget", "secret")
        if target not in _TARGETS:
            raise UsageError(f"{where}: regexTarget must be one of {', '.join(_TARGETS)}")
        parsed.append(Allowlist(
            regexes=tuple(_compile(pattern, where + " allowlist") for pattern in _strings(raw.get("regexes", []), where)),
            paths=tuple(_compile(pattern, where + " allowlist") for pattern in _strings(raw.get("paths", []), where)),
            stopwords=tuple(word.lower() for word in _strings(raw.get("stopwords", []), where)),
            regex_target=target,
        ))
    return tuple(parsed)


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UsageError(f"{where}: expected a list of strings")
    return value


def _compile(pattern: Any, where: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise UsageError(f"{where}: the regex must be a string")
    try:
        return re.compile(translate_re2(pattern), re.ASCII)
    except re.error as err:
        raise UsageError(f"{where}: invalid regex: {err}") from None


def translate_re2(pattern: str) -> str:
    """The RE2 spellings gitleaks configs use that Python's ``re`` lacks: POSIX classes,
    ``\\z``, and a ``(?i)`` that is not at the start (Python allows global flags only
    there; moving it to the front makes the whole regex case-insensitive, a superset)."""
    for posix, python in _POSIX_CLASSES.items():
        pattern = pattern.replace(posix, python)
    pattern = pattern.replace(r"\z", r"\Z")
    if "(?i)" in pattern[1:]:
        pattern = "(?i)" + pattern.replace("(?i)", "")
    return pattern
