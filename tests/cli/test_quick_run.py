"""``run`` read without argparse (``cli.quick_run_args``) must read exactly as the parser.

``run`` wraps every command an agent runs, so it skips building the parser; that is
only safe if, whenever it answers, it answers what the parser would have. Anything
it does not recognise it leaves to the parser (``None``), which also explains errors.
"""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aegis_tui.cli import quick_run_args
from aegis_tui.cli.parser import build_parser


def parsed(argv: list[str]) -> dict[str, object] | None:
    """The parser's namespace as a dict, or None when it refuses the argv."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return vars(build_parser(argv).parse_args(argv))
    except SystemExit:
        return None


@pytest.mark.parametrize("argv", [
    ["run", "--", "true"],
    ["run", "--", "git", "push", "--force", "origin"],
    ["run", "--need", "github", "--", "git", "push"],
    ["run", "--need", "github", "--need=db=DATABASE_URL", "--", "env"],
    ["run", "--reason", "deploy the site", "--need", "aegis://acme/prod/db", "--", "make", "deploy"],
    ["run", "--env-file", ".env.tpl", "--", "npm", "test"],
    ["run", "--reason=", "--env-file=x", "--need=", "--", "true"],
    ["run", "--reason", "first", "--reason", "last", "--", "true"],
    ["run", "--", "--", "true"],
    ["run", "--", "sh", "-c", "echo --need x"],
])
def test_the_common_forms_are_read_without_the_parser_exactly_as_the_parser_reads_them(argv):
    quick = quick_run_args(argv)
    assert quick is not None
    assert vars(quick) == parsed(argv)


@pytest.mark.parametrize("argv", [
    ["run"],
    ["run", "--"],
    ["run", "--need"],
    ["run", "--need", "--", "true"],
    ["run", "--need", "-x", "--", "true"],
    ["run", "--nee", "x", "--", "true"],
    ["run", "--need", "x", "true"],
    ["run", "true"],
    ["run", "--help"],
    ["run", "-h", "--", "true"],
    ["run", "--bogus", "--", "true"],
])
def test_anything_else_is_left_to_the_parser(argv):
    assert quick_run_args(argv) is None


TOKENS = ["--need", "--need=gh", "--need=a=B", "gh", "--reason", "--reason=why", "why", "--env-file",
          "--env-file=f", "f", "--", "--", "true", "-x", "--bogus", "", "-", "a=b", "--need=", "-1"]


@given(st.lists(st.sampled_from(TOKENS), max_size=8))
def test_whenever_the_quick_reading_answers_the_parser_agrees(tokens):
    argv = ["run", *tokens]
    quick = quick_run_args(argv)
    if quick is not None:
        assert vars(quick) == parsed(argv), argv
