"""Which variables a ``run`` fills, and which names it accepts for them."""

import re

import pytest

from aegis_tui.core.errors import UsageError
from aegis_tui.core.run.environment import Need, env_name_for, is_env_name, parse_need, validate_env_name

_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def test_env_names_are_exactly_ascii_letters_digits_and_underscore() -> None:
    for codepoint in range(0x3000):
        for name in (chr(codepoint), "a" + chr(codepoint), chr(codepoint) + "a", "_" + chr(codepoint)):
            assert is_env_name(name) == bool(_SHELL_NAME.match(name)), repr(name)


@pytest.mark.parametrize("name", ["A\n", "", "1A", "A-B", "A B", "Ａ", "ß", "A=B"])
def test_a_name_no_shell_could_export_is_refused(name: str) -> None:
    with pytest.raises(UsageError):
        validate_env_name(name)


def test_need_names_its_variable_or_takes_one_from_the_reference() -> None:
    assert parse_need("github-pat") == Need("GITHUB_PAT", "github-pat", "--need")
    assert parse_need("acme/dev/db=DATABASE_URL") == Need("DATABASE_URL", "acme/dev/db", "--need")
    assert env_name_for("aegis://acme/dev/2fa-seed") == "_2FA_SEED"


def test_a_reference_that_makes_no_name_asks_for_one() -> None:
    with pytest.raises(UsageError, match="--need NAME=ENV"):
        env_name_for("aegis://acme/dev/---")
