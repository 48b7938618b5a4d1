"""Generated secret values."""

from __future__ import annotations

import pytest

from aegis_tui.core.errors import UsageError
from aegis_tui.core.generate import CHARSETS, MAX_LENGTH, MIN_LENGTH, generate_value
from aegis_tui.core.secret import Secret


@pytest.mark.parametrize("charset", sorted(CHARSETS))
def test_generated_values_use_only_the_charset_and_have_the_length(charset: str) -> None:
    value = generate_value(64, charset)
    assert isinstance(value, Secret)
    text = value.reveal_text()
    assert len(text) == 64
    assert set(text) <= set(CHARSETS[charset])


def test_default_is_32_alphanumerics() -> None:
    text = generate_value().reveal_text()
    assert len(text) == 32 and text.isalnum() and text.isascii()


def test_prefix_is_prepended_and_not_counted_in_the_length() -> None:
    text = generate_value(16, "hex", prefix="sk_test_").reveal_text()
    assert text.startswith("sk_test_")
    assert len(text) == len("sk_test_") + 16
    assert set(text[len("sk_test_"):]) <= set(CHARSETS["hex"])


def test_two_generated_values_differ() -> None:
    assert generate_value(32) != generate_value(32)


def test_large_samples_cover_the_whole_alphabet() -> None:
    # 4096 draws from 16 symbols: missing one has probability ~16 * (15/16)^4096, i.e. never.
    assert set(generate_value(MAX_LENGTH, "hex").reveal_text()) == set(CHARSETS["hex"])


@pytest.mark.parametrize("length", [MIN_LENGTH, MAX_LENGTH])
def test_length_bounds_are_inclusive(length: int) -> None:
    assert len(generate_value(length)) == length


@pytest.mark.parametrize("length", [0, MIN_LENGTH - 1, MAX_LENGTH + 1, -5])
def test_out_of_range_length_raises_usage_error(length: int) -> None:
    with pytest.raises(UsageError, match="characters long"):
        generate_value(length)


def test_unknown_charset_raises_usage_error_listing_the_choices() -> None:
    with pytest.raises(UsageError, match="alnum"):
        generate_value(16, "emoji")


@pytest.mark.parametrize("prefix", ["has space", "tab\t", "new\nline", "x" * 33])
def test_bad_prefix_raises_usage_error(prefix: str) -> None:
    with pytest.raises(UsageError, match="prefix"):
        generate_value(16, prefix=prefix)
