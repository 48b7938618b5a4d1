"""The output masker: secret values in any encoding, in any chunking, become ``[aegis:NAME]``.

Every test runs on every match engine, chosen through ``AEGIS_VAULT_MATCH_ENGINE``.
The reference for "correct" is ``reference_mask``: one pass over the whole output.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aegis_tui.core.redaction import Masker, MaskStream, needles_for
from aegis_tui.core.redaction.engines import ENGINE_ENV, ENGINES, available_engines
from aegis_tui.core.redaction.masker import printable_label

TOKEN = b"sk-live-4f9a2c7e1b8d3f6a0c5e9b2d"
SECRETS = {"OPENAI_KEY": [TOKEN]}
MASK = b"[aegis:OPENAI_KEY]"


@pytest.fixture(params=ENGINES, autouse=True)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param not in available_engines():
        pytest.skip(f"the {request.param} engine cannot be imported here")
    monkeypatch.setenv(ENGINE_ENV, request.param)
    return request.param


def reference_mask(secrets: Mapping[str, Iterable[bytes]], data: bytes) -> bytes:
    """Mask ``data`` in one pass: all occurrences, merged where they overlap or touch."""
    owner: dict[bytes, str] = {}
    for label, values in secrets.items():
        for value in values:
            for needle in sorted(needles_for(value)):
                owner.setdefault(needle, label)
    found = []
    for needle, label in owner.items():
        at = data.find(needle)
        while at >= 0:
            found.append((at, at + len(needle), label))
            at = data.find(needle, at + 1)
    found.sort(key=lambda match: (match[0], match[0] - match[1]))
    spans: list[list[int | str]] = []
    for start, end, label in found:
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end, label])
    out, at = [], 0
    for start, end, label in spans:
        out += [data[at:start], f"[aegis:{printable_label(label)}]".encode()]
        at = end
    return b"".join([*out, data[at:]])


def mask_in_chunks(stream: MaskStream, data: bytes, cuts: Sequence[int]) -> bytes:
    bounds = [0, *cuts, len(data)]
    return b"".join(stream.feed(data[start:end]) for start, end in zip(bounds, bounds[1:])) + stream.flush()


def mask(secrets: Mapping[str, Iterable[bytes]], data: bytes, cuts: Sequence[int] = ()) -> bytes:
    return mask_in_chunks(Masker(secrets).stream(), data, cuts)


def assert_hidden(secrets: Mapping[str, Iterable[bytes]], output: bytes) -> None:
    for values in secrets.values():
        for value in values:
            for needle in needles_for(value):
                assert needle not in output, needle


# -- every encoding -------------------------------------------------------------------------
def b64_blob(encode: Callable[[bytes], bytes], offset: int) -> bytes:
    rng = random.Random(offset)
    return encode(rng.randbytes(30 + offset) + TOKEN + rng.randbytes(31))


ENCODED = {
    "raw": TOKEN,
    "hex-lower": binascii.hexlify(TOKEN),
    "hex-upper": binascii.hexlify(TOKEN).upper(),
    **{f"base64-{name}-align{offset}": b64_blob(encode, offset)
       for name, encode in (("std", base64.b64encode), ("url", base64.urlsafe_b64encode)) for offset in range(3)},
    "base64-std-standalone": base64.b64encode(TOKEN),
}


@pytest.mark.parametrize("form", sorted(ENCODED))
def test_every_encoding_of_a_value_is_masked(form: str) -> None:
    output = mask(SECRETS, b"before " + ENCODED[form] + b" after\n")
    assert MASK in output
    assert output.startswith(b"before ") and output.endswith(b" after\n")
    assert_hidden(SECRETS, output)


@pytest.mark.parametrize("encode", [quote, quote_plus], ids=["quote", "quote_plus"])
def test_url_encoded_values_are_masked(encode: Callable[..., str]) -> None:
    secrets = {"DB_PASSWORD": [b"p@ss word/with+stuff&more"]}
    url = b"postgres://app:" + encode(b"p@ss word/with+stuff&more", safe="").encode() + b"@db:5432/app"
    assert mask(secrets, url) == b"postgres://app:[aegis:DB_PASSWORD]@db:5432/app"


@pytest.mark.parametrize("ascii_only", [True, False], ids=["escaped-unicode", "utf8"])
def test_json_escaped_values_inside_a_json_document_are_masked(ascii_only: bool) -> None:
    value = 'quote"back\\slash\nnewline-ünï'
    secrets = {"TOKEN": [value.encode()]}
    document = json.dumps({"token": value, "user": "me"}, ensure_ascii=ascii_only).encode()
    assert mask(secrets, document) == b'{"token": "[aegis:TOKEN]", "user": "me"}'


# -- chunking -------------------------------------------------------------------------------
def test_a_value_split_at_every_possible_feed_boundary_is_masked() -> None:
    data = b"token=" + TOKEN + b";\n"
    expected = b"token=" + MASK + b";\n"
    for cut in range(len(data) + 1):
        assert mask(SECRETS, data, [cut]) == expected, cut


def test_one_byte_feeds_mask_every_form() -> None:
    data = b"|".join(ENCODED.values())
    output = mask(SECRETS, data, range(1, len(data)))
    assert output == reference_mask(SECRETS, data)
    assert_hidden(SECRETS, output)


def test_no_part_of_a_split_value_is_emitted_before_the_value_is_complete() -> None:
    stream = Masker(SECRETS).stream()
    emitted = stream.feed(b"key: " + TOKEN[:10])
    assert TOKEN[:4] not in emitted
    assert emitted + stream.feed(TOKEN[10:] + b"\n") + stream.flush() == b"key: " + MASK + b"\n"


def test_feed_holds_back_no_more_than_the_longest_needle_minus_one() -> None:
    hold = max(len(needle) for needle in needles_for(TOKEN)) - 1
    stream = Masker(SECRETS).stream()
    text = b"ordinary output line\n" * 50
    assert stream.feed(text) == text[:len(text) - hold]
    assert stream.flush() == text[len(text) - hold:]


# -- the property -----------------------------------------------------------------------------
NO_BRACKETS = st.binary(min_size=4, max_size=40).filter(lambda value: b"[" not in value and b"]" not in value)
FORMS = [
    lambda value, junk: value,
    lambda value, junk: base64.b64encode(junk + value + junk),
    lambda value, junk: base64.urlsafe_b64encode(junk[:1] + value + junk),
    lambda value, junk: binascii.hexlify(value).upper(),
    lambda value, junk: quote(value, safe="").encode(),
]


@st.composite
def masking_cases(draw: st.DrawFn) -> tuple[dict[str, list[bytes]], bytes, list[int]]:
    labels = draw(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=4, unique=True))
    secrets = {label: draw(st.lists(NO_BRACKETS, min_size=1, max_size=2)) for label in labels}
    pieces = []
    for _ in range(draw(st.integers(0, 8))):
        pieces.append(draw(st.binary(max_size=30)))
        values = secrets[draw(st.sampled_from(labels))]
        form = draw(st.sampled_from(FORMS))
        pieces.append(form(draw(st.sampled_from(values)), draw(st.binary(max_size=4))))
    data = b"".join(pieces)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    return secrets, data, cuts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=masking_cases())
def test_any_chunking_gives_the_single_pass_result_and_hides_every_needle(
        case: tuple[dict[str, list[bytes]], bytes, list[int]]) -> None:
    secrets, data, cuts = case
    output = mask(secrets, data, cuts)
    assert output == reference_mask(secrets, data)
    assert_hidden(secrets, output)


# -- overlaps ---------------------------------------------------------------------------------
def test_a_value_inside_a_longer_value_yields_to_the_longer_one() -> None:
    secrets = {"SHORT": [b"abcdefgh"], "LONG": [b"xxabcdefghyy"], "PREFIXED": [b"abcdefgh-and-more"]}
    assert mask(secrets, b"1 xxabcdefghyy 2 abcdefgh 3") == b"1 [aegis:LONG] 2 [aegis:SHORT] 3"
    assert mask(secrets, b"4 abcdefgh-and-more") == b"4 [aegis:PREFIXED]"  # same start: the longest names it


def test_overlapping_values_merge_into_one_span_named_after_the_first() -> None:
    secrets = {"FIRST": [b"12345678"], "SECOND": [b"5678abcdefgh"]}
    assert mask(secrets, b"<12345678abcdefgh>") == b"<[aegis:FIRST]>"
    assert mask(secrets, b"<2345678abcdefgh>") == b"<234[aegis:SECOND]>"


def test_adjacent_values_merge_into_one_span() -> None:
    stream = Masker(SECRETS).stream()
    assert mask_in_chunks(stream, TOKEN + TOKEN + b" " + TOKEN, [5, 40]) == MASK + b" " + MASK
    assert stream.hits["OPENAI_KEY"] == 2


def test_an_older_version_of_a_value_is_masked_under_the_same_label() -> None:
    secrets = {"API": [b"current-value-123", b"previous-value-456"]}
    assert mask(secrets, b"a current-value-123 b previous-value-456") == b"a [aegis:API] b [aegis:API]"


# -- flush and idle ----------------------------------------------------------------------------
def test_flush_emits_a_prompt_held_back_for_lack_of_a_newline() -> None:
    stream = Masker(SECRETS).stream()
    held = stream.feed(b"Password: ")
    assert held + stream.flush() == b"Password: "
    assert stream.flush() == b""


def test_a_value_split_across_a_flush_leaks_its_prefix_and_masks_the_rest() -> None:
    stream = Masker(SECRETS).stream()
    before = stream.feed(b"key=" + TOKEN[:12]) + stream.flush()
    assert before == b"key=" + TOKEN[:12]  # the documented price of keeping prompts interactive
    assert stream.feed(TOKEN[12:] + b" done\n") + stream.flush() == MASK + b" done\n"
    assert stream.hits["OPENAI_KEY"] == 1


def test_a_masked_span_open_at_a_flush_continues_without_a_second_label() -> None:
    stream = Masker(SECRETS).stream()
    first = stream.feed(TOKEN) + stream.flush()
    assert first == MASK
    assert stream.feed(TOKEN + b"\n") + stream.flush() == b"\n"


def test_feeding_nothing_emits_nothing() -> None:
    stream = Masker(SECRETS).stream()
    assert stream.feed(b"") == b"" and stream.flush() == b""


# -- no false masking ----------------------------------------------------------------------------
ORDINARY = (b"$ git status\nOn branch main\nnothing to commit, working tree clean\n"
            b"def main() -> int:\n    return 0\n\x1b[32mPASSED\x1b[0m 1234 tests in 5.6s\n")


def test_ordinary_output_passes_through_unchanged() -> None:
    secrets = {"A": [b"unrelated-secret-value"], "B": [b"\x00\xff binary \x10"]}
    assert mask(secrets, ORDINARY, [7, 50]) == ORDINARY


def test_values_too_short_to_mask_leave_the_output_alone() -> None:
    masker = Masker({"PIN": [b"123"], "EMPTY": [b""]})
    assert masker.empty
    stream = masker.stream()
    assert stream.feed(ORDINARY) == ORDINARY  # nothing to wait for: no byte is held back
    assert stream.flush() == b""


def test_a_four_byte_value_is_masked_only_in_its_longer_encodings() -> None:
    secrets = {"PIN": [b"4711"]}
    assert mask(secrets, b"pin 4711 hex 34373131") == b"pin 4711 hex [aegis:PIN]"


# -- labels and hits -----------------------------------------------------------------------------
def test_labels_with_control_characters_are_sanitised() -> None:
    label = "evil\x1b]0;pwned\x07\u202e\n"
    output = mask({label: [TOKEN]}, b"x " + TOKEN)
    assert output == b"x [aegis:evil?]0;pwned???]"
    assert printable_label("prod/db password ü") == "prod/db password ü"


def test_hits_count_each_masked_occurrence_by_label() -> None:
    stream = Masker({"A": [b"alpha-secret"], "B": [b"bravo-secret"], "C": [b"never-seen"]}).stream()
    data = b"alpha-secret bravo-secret " + base64.b64encode(b"alpha-secret") + b" alpha-secret"
    mask_in_chunks(stream, data, [3, 17])
    assert stream.hits == {"A": 3, "B": 1}


def test_one_masker_serves_independent_streams() -> None:
    masker = Masker(SECRETS)
    out, err = masker.stream(), masker.stream()
    assert out.feed(b"out " + TOKEN[:8]) + err.feed(b"err " + TOKEN[:20]) == b""
    assert out.feed(TOKEN[8:]) + out.flush() == b"out " + MASK
    assert err.feed(TOKEN[20:]) + err.flush() == b"err " + MASK
    assert out.hits["OPENAI_KEY"] == err.hits["OPENAI_KEY"] == 1
