"""hyperscan's plan of where each rule's regex runs: held to finding exactly what running
every regex over the whole text finds, for the default rules and for user rules of
every reach, on ASCII and non-ASCII text.

Tokens are built at run time from ``test_rules.CASES``, so this file holds no secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aegis_tui.core.redaction.engines import ENGINE_ENV, available_engines
from aegis_tui.core.scan.prefilter import (
    BEFORE,
    LINE,
    WHOLE,
    WIDTH,
    Reach,
    RulePrefilter,
    reach_of,
    widened_repeats,
    without_lookarounds,
)
from aegis_tui.core.scan.rules import RuleSet, default_rules, load_rules
from tests.core.scan.test_rules import CASES, mix

pytestmark = pytest.mark.skipif("hyperscan" not in available_engines(), reason="hyperscan has no wheel here")

USER_RULES = r"""
[[rules]]
id = "lookbehind"
regex = '''(?<![a-z])tok_[0-9]{6}(?![0-9])'''

[[rules]]
id = "end-anchored"
regex = '''last_[0-9]{4}$'''

[[rules]]
id = "start-anchored"
regex = '''\Afirst_[0-9]{4}'''

[[rules]]
id = "backreference"
regex = '''(['"])quoted_[0-9]{4}\1'''

[[rules]]
id = "empty-matching"
regex = '''z*(?:zz_[0-9]{4})?'''

[[rules]]
id = "crosses-lines"
regex = '''BEGIN\s*([A-Z]{4})\s*END'''

[[rules]]
id = "bounded-block"
regex = '''OPEN[\s\S]{2,40}?SHUT'''
"""

USER_FRAGMENTS = ["BEGIN\nABCD\nEND", "BEGIN ABCD\n\n END", "OPEN\n\nSHUT", "OPEN é\nSHUT", "OPEN\n" + "é" * 30 + "SHUT", "tok_123456", "xtok_123456", "last_1234", "first_1234", "'quoted_1234'", "'quoted_1234\"",
                  "zz_1234", "BEGIN", "ABCD", "END", "OPEN", "SHUT", "\n", "\n\n", " ", "é", "😀", "\t", "a"]


def _without_prefilter(rules: RuleSet) -> RuleSet:
    """The same rules, planned by nothing: every regex over the whole text."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENGINE_ENV, "ahocorasick")
        plain = RuleSet(rules.rules, rules.allowlists)
        assert plain.prefilter is None
    return plain


@pytest.fixture(scope="module")
def planned() -> RuleSet:
    rules = default_rules()
    assert rules.prefilter is not None
    return rules


@pytest.fixture(scope="module")
def whole(planned: RuleSet) -> RuleSet:
    return _without_prefilter(planned)


def _fragments() -> Iterator[str]:
    for _, text, _ in CASES:
        yield from (text, text.replace("\n", "\r\n"))
    yield from ["\n", "\n", "\r\n", " ", "é", "😀", "token = ", 'password: "', "', ", "# aegis:allow", "xx"]


TEXTS = st.lists(st.sampled_from(sorted(set(_fragments()))), max_size=30).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(TEXTS)
def test_the_plan_finds_what_the_whole_text_scan_finds(planned: RuleSet, whole: RuleSet, text: str) -> None:
    assert planned.scan(text, "mixed.txt") == whole.scan(text, "mixed.txt")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(USER_FRAGMENTS), max_size=25).map("".join))
def test_user_rules_of_every_reach_find_the_same_with_the_plan(text: str) -> None:
    planned = load_rules(USER_RULES)
    assert planned.prefilter is not None
    assert planned.scan(text, "f") == _without_prefilter(planned).scan(text, "f")


def test_every_default_case_is_found_the_same_way_with_and_without_the_plan(planned: RuleSet, whole: RuleSet) -> None:
    for _, text, _ in CASES:
        padded = f"é line before\n{text}\nand 😀 after\n"
        assert planned.scan(padded, "c") == whole.scan(padded, "c")


def test_only_the_line_a_token_ends_on_is_searched(planned: RuleSet) -> None:
    token_line = "value = ghp_" + mix(36) + "\n"
    filler = "ordinary words on an ordinary line\n"
    text = filler * 500 + token_line + filler * 500
    prefilter = planned.prefilter
    assert prefilter is not None
    plan = prefilter.plan(text)
    index = next(i for i, rule in enumerate(planned.rules) if rule.id == "github-pat")
    start = len(filler) * 500
    assert plan.windows[index] == [(start, start + len(token_line))]
    assert set(plan.windows) == {index}  # no other rule has anything to confirm


def test_windows_are_character_offsets_in_text_that_is_not_ascii(planned: RuleSet) -> None:
    text = "😀é\n" * 3 + "ünïcödé value = ghp_" + mix(36) + " ✓\n"
    [finding] = planned.scan(text, "u.txt")
    assert (finding.rule_id, finding.line, finding.column) == ("github-pat", 4, 17)
    assert text.encode()[finding.start:finding.end].decode() == "ghp_" + mix(36)


def test_a_rule_hyperscan_cannot_compile_is_confirmed_over_the_whole_text() -> None:
    rules = load_rules(USER_RULES)
    prefilter = rules.prefilter
    assert prefilter is not None
    index = next(i for i, rule in enumerate(rules.rules) if rule.id == "empty-matching")
    assert prefilter.plan("nothing here").windows[index] is None


def test_the_engine_switch_turns_the_plan_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENGINE_ENV, "python")
    assert not RulePrefilter.available()
    assert default_rules().prefilter is None


def test_threads_scanning_at_once_each_get_their_own_results(planned: RuleSet, whole: RuleSet) -> None:
    texts = [f"line {n}\nvalue = ghp_{mix(36, offset=n)}\n" * (n % 5 + 1) for n in range(60)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda text: planned.scan(text, "t"), texts))
    assert results == [whole.scan(text, "t") for text in texts]


@pytest.mark.parametrize(("pattern", "expected"), [
    (r"\b(glpat-[A-Za-z0-9_-]{20,64})(?![A-Za-z0-9_-])", r"\b(glpat-[A-Za-z0-9_-]{20,64})"),
    (r"(?<=x)a(?=[)(])b", "ab"),
    (r"(?<!\()a(?!b(c))d", "ad"),
    (r"[(?=]a\(?=b", r"[(?=]a\(?=b"),  # a class and an escaped parenthesis are not lookarounds
    (r"(?:a|b)(c)", r"(?:a|b)(c)"),
])
def test_without_lookarounds(pattern: str, expected: str) -> None:
    assert without_lookarounds(pattern) == expected


@pytest.mark.parametrize(("pattern", "expected"), [
    ("a{2,5}", "a{2,}"),
    ("[{1,2}]", "[{1,2}]"),
    (r"\{3,4}", r"\{3,4}"),
    ("b{36}", "b{36}"),
    ("b{100}", "b{100,}"),
    (r"[\s\S]{32,16384}?", r"[\s\S]{32,}?"),
])
def test_widened_repeats(pattern: str, expected: str) -> None:
    assert widened_repeats(pattern) == expected


@pytest.mark.parametrize(("pattern", "reach"), [
    (r"\b(ghp_[A-Za-z0-9]{36})\b", Reach(LINE)),
    (r"a.b", Reach(LINE)),
    (r"a[^\s'\"]{8,}", Reach(LINE)),
    (r"a(?=\n)", Reach(LINE)),  # a lookahead reads past the match, it does not widen it
    (r"a\s*b", Reach(BEFORE)),
    (r"a[\s\S]{1,10}b", Reach(WIDTH, 12)),
    (r"(?s)a.b", Reach(WIDTH, 3)),
    (r"a(?s:.)b", Reach(WIDTH, 3)),
    (r"a[^x]b", Reach(WIDTH, 3)),
    (r"a\nb", Reach(WIDTH, 3)),
    (r"a\Wb", Reach(WIDTH, 3)),
    (r"abc$", Reach(WHOLE)),
    (r"\Aabc", Reach(WHOLE)),
    (r"x(?=abc\Z)", Reach(WHOLE)),
])
def test_reach_of(pattern: str, reach: Reach) -> None:
    assert reach_of(re.compile(pattern, re.ASCII)) == reach
