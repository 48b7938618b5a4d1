"""Escape sequences are removed before scanning, and offsets map back to the original bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aegis_tui.core.scan.ansi import MAX_OSC, AnsiStripper, strip_ansi


def strip_in_chunks(data: bytes, cuts: list[int]) -> bytes:
    stripper = AnsiStripper()
    bounds = [0, *sorted(cuts), len(data)]
    return b"".join(stripper.feed(data[a:b]) for a, b in zip(bounds, bounds[1:])) + stripper.finish()


@pytest.mark.parametrize("sequence", [
    b"\x1b[31m", b"\x1b[0m", b"\x1b[1;38;5;208m", b"\x1b[2K", b"\x1b[?25h",  # CSI, SGR colours among them
    b"\x1b]0;window title\x07", b"\x1b]8;;https://example.com\x1b\\",  # OSC, both terminators
    b"\x1b(B", b"\x1b7", b"\x1bM", b"\x1b=",  # nF and two-byte sequences
], ids=repr)
def test_a_sequence_inside_text_is_removed_and_offsets_map_past_it(sequence: bytes) -> None:
    data = b"abc" + sequence + b"def"
    stripped, offsets = strip_ansi(data)
    assert stripped == b"abcdef"
    assert [offsets.to_original(at) for at in range(6)] == [0, 1, 2, 3 + len(sequence), 4 + len(sequence),
                                                            5 + len(sequence)]


def test_text_without_escapes_is_unchanged_and_offsets_are_identical() -> None:
    stripped, offsets = strip_ansi(b"plain text\nline two")
    assert stripped == b"plain text\nline two"
    assert all(offsets.to_original(at) == at for at in range(len(stripped)))


def test_several_sequences_in_a_row_and_apart_accumulate() -> None:
    data = b"\x1b[1m\x1b[31mab\x1b[0mcd\x1b]2;t\x07e"
    stripped, offsets = strip_ansi(data)
    assert stripped == b"abcde"
    assert [data[offsets.to_original(at)] for at in range(5)] == list(b"abcde")


def test_an_unfinished_sequence_at_the_end_of_the_input_is_kept_as_text() -> None:
    assert strip_ansi(b"ab\x1b[31")[0] == b"ab\x1b[31"
    assert strip_ansi(b"ab\x1b]0;title")[0] == b"ab\x1b]0;title"


def test_an_osc_longer_than_its_bound_is_not_a_sequence_so_a_stray_escape_cannot_swallow_a_file() -> None:
    data = b"\x1b]" + b"x" * (MAX_OSC + 1) + b"\x07tail"
    assert strip_ansi(data)[0] == data


@pytest.mark.parametrize("sequence", [b"\x1b[38;5;208m", b"\x1b]0;a title\x1b\\", b"\x1b]8;;u\x07", b"\x1b(B"],
                         ids=repr)
def test_a_sequence_split_at_every_position_of_a_chunk_end_is_still_removed(sequence: bytes) -> None:
    data = b"ab" + sequence + b"cd"
    for cut in range(len(data) + 1):
        assert strip_in_chunks(data, [cut]) == b"abcd", cut
    assert strip_in_chunks(data, list(range(len(data)))) == b"abcd"


def test_the_stream_holds_back_an_unfinished_sequence_until_the_next_chunk() -> None:
    stripper = AnsiStripper()
    assert stripper.feed(b"ab\x1b[3") == b"ab"
    assert stripper.feed(b"1mcd") == b"cd"
    assert stripper.offsets.to_original(2) == 7


def test_a_held_back_sequence_that_never_finishes_comes_out_at_the_end() -> None:
    stripper = AnsiStripper()
    assert stripper.feed(b"ab\x1b]0;ti") == b"ab"
    assert stripper.finish() == b"\x1b]0;ti"


_PIECES = st.sampled_from([b"a", b"b", b"\n", b"\x1b", b"[", b"]", b"31", b";", b"m", b"\x07", b"\\", b"(", b"B",
                           b"\x1b[31m", b"\x1b]0;t\x07", b"\xc3\xa9"])


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(_PIECES, max_size=30), data=st.data())
def test_stripping_in_any_chunks_equals_stripping_at_once_with_the_same_offsets(pieces: list[bytes],
                                                                                 data: st.DataObject) -> None:
    whole = b"".join(pieces)
    cuts = data.draw(st.lists(st.integers(0, len(whole)), max_size=8))
    stripped, offsets = strip_ansi(whole)
    stripper = AnsiStripper()
    bounds = [0, *sorted(cuts), len(whole)]
    chunked = b"".join(stripper.feed(whole[a:b]) for a, b in zip(bounds, bounds[1:])) + stripper.finish()
    assert chunked == stripped
    for at in range(len(stripped)):
        assert stripper.offsets.to_original(at) == offsets.to_original(at)
        assert whole[offsets.to_original(at)] == stripped[at]
