"""The known-values detector finds the vault's own values, in every encoding, in files and streams.

Every test runs on every match engine, chosen through ``AEGIS_VAULT_MATCH_ENGINE``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import shlex
import uuid
from collections.abc import Callable
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aegis_tui.core.redaction.engines import ENGINE_ENV, ENGINES, available_engines
from aegis_tui.core.scan.findings import KNOWN, Finding
from aegis_tui.core.scan.known import KnownValues

TEXT_VALUE = b"s3cr3t value/with&odd=chars'\"$x"
BINARY_VALUE = bytes([0xFB, 0xFF, 0xBE, 0xFB, 0xEF, 0xFF]) + b"-bin-token"  # base64 of it holds '+' and '/'
PREFIX = "first line\nprefix é: ".encode()  # the é makes the column count characters, not bytes
SUFFIX = b" suffix\nlast line\n"


@pytest.fixture(params=ENGINES, autouse=True)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param not in available_engines():
        pytest.skip(f"the {request.param} engine cannot be imported here")
    monkeypatch.setenv(ENGINE_ENV, request.param)
    return str(request.param)


def scan_in_chunks(known: KnownValues, data: bytes, cuts: list[int], path: str = "f") -> list[Finding]:
    bounds = [0, *sorted(cuts), len(data)]
    return list(known.scan_stream((data[a:b] for a, b in zip(bounds, bounds[1:])), path))


def shell_backslashed(value: bytes) -> bytes:
    return b"".join(b"\\" + bytes([byte]) if byte in b" '\"$&" else bytes([byte]) for byte in value)


ENCODED: dict[str, tuple[bytes, Callable[[bytes], bytes]]] = {
    "raw": (TEXT_VALUE, lambda value: value),
    "hex": (TEXT_VALUE, binascii.hexlify),
    "HEX": (TEXT_VALUE, lambda value: binascii.hexlify(value).upper()),
    "base64": (BINARY_VALUE, base64.b64encode),
    "base64url": (BINARY_VALUE, base64.urlsafe_b64encode),
    "url": (TEXT_VALUE, lambda value: quote(value, safe="").encode()),
    "json": (TEXT_VALUE, lambda value: json.dumps(value.decode()).encode()),
    "shell": (TEXT_VALUE, lambda value: shlex.quote(value.decode()).encode()),
}


@pytest.mark.parametrize("label", sorted(ENCODED))
def test_a_value_in_each_encoding_is_found_with_its_label_credential_version_and_position(label: str) -> None:
    value, encode = ENCODED[label]
    form = encode(value)
    assert form != value or label == "raw"
    known = KnownValues({"api-key": [(3, value)]})
    findings = known.scan_bytes(PREFIX + form + SUFFIX, "notes.txt")
    assert len(findings) == 1
    finding = findings[0]
    assert (finding.detector, finding.rule_id, finding.credential, finding.version) == (KNOWN, "known-value",
                                                                                         "api-key", 3)
    assert finding.encoding == label
    quote_mark = 1 if form[:1] in (b'"', b"'") else 0  # JSON and shell needles leave the quotes out
    column = len("prefix é: ") + 1 + quote_mark
    assert (finding.line, finding.column) == (2, column)
    assert finding.location() == f"notes.txt:2:{column}"
    assert (finding.start, finding.end) == (len(PREFIX) + quote_mark, len(PREFIX) + len(form) - quote_mark)


def test_the_printf_q_form_of_a_value_is_found_as_shell() -> None:
    known = KnownValues({"pw": [(1, b"two words & 'quotes'")]})
    [finding] = known.scan_bytes(b"cmd --password " + shell_backslashed(b"two words & 'quotes'") + b"\n", "h")
    assert finding.encoding == "shell" and finding.column == len("cmd --password ") + 1


def test_retired_versions_are_found_too_with_their_own_version() -> None:
    known = KnownValues({"db": [(1, b"old-password-1"), (2, b"new-password-2")]})
    findings = known.scan_bytes(b"a=old-password-1\nb=new-password-2\n", "env")
    assert [(f.version, f.line, f.column) for f in findings] == [(1, 1, 3), (2, 2, 3)]


def test_the_finding_never_holds_the_value_and_its_fingerprint_ignores_the_offset() -> None:
    known = KnownValues({"tok": [(4, b"sk-live-0123456789")]})
    [here] = known.scan_bytes(b"x sk-live-0123456789", "a.py")
    [moved] = known.scan_bytes(b"more\nlines\nabove\nx sk-live-0123456789", "a.py")
    assert here.fingerprint == moved.fingerprint == "a.py:known-value:tok:4"
    assert here.start != moved.start
    assert all(b"sk-live" not in str(field).encode() for field in here)


def test_values_too_short_to_mask_are_not_scanned() -> None:
    known = KnownValues({"pin": [(1, b"123")]})
    assert known.empty
    assert known.scan_bytes(b"pin 123 123", "f") == []


def test_overlapping_forms_of_one_value_are_reported_once_as_the_longest() -> None:
    value = b"0123456789abcdef"  # its hex form starts with digits that are themselves in the value
    known = KnownValues({"k": [(1, value)]})
    findings = known.scan_bytes(b"[" + base64.b64encode(value) + b"]", "f")
    assert [(f.start, f.end, f.encoding) for f in findings] == [(1, 1 + len(base64.b64encode(value)), "base64")]


def test_two_values_side_by_side_are_two_findings() -> None:
    known = KnownValues({"a": [(1, b"AAAA-first")], "b": [(1, b"BBBB-second")]})
    findings = known.scan_bytes(b"AAAA-firstBBBB-second", "f")
    assert [(f.credential, f.start, f.end) for f in findings] == [("a", 0, 10), ("b", 10, 21)]


def test_a_value_split_across_every_chunk_boundary_is_found_exactly_once() -> None:
    value = b"ghp_0123456789abcdefXYZ"
    data = b"line\nsome text " + value + b" more text"
    known = KnownValues({"gh": [(1, value)]})
    expected = known.scan_bytes(data, "f")
    assert [(f.start, f.line, f.column) for f in expected] == [(data.find(value), 2, 11)]
    for cut in range(len(data) + 1):
        assert scan_in_chunks(known, data, [cut]) == expected, cut
    assert scan_in_chunks(known, data, list(range(1, len(data)))) == expected


def test_a_value_with_a_colour_code_inside_is_found_at_its_original_position() -> None:
    value = b"ghp_0123456789abcdef"
    data = b"log:\n  token \x1b[1m" + value[:7] + b"\x1b[31m" + value[7:] + b"\x1b[0m done"
    known = KnownValues({"gh": [(2, value)]})
    for cuts in ([], list(range(1, len(data)))):
        [finding] = scan_in_chunks(known, data, cuts)
        assert finding.start == data.find(b"ghp_") and data[finding.end - 1:finding.end] == b"f"
        assert (finding.line, finding.column) == (2, len("  token \x1b[1m") + 1)


def test_no_false_positives_on_ordinary_text_uuids_and_digests() -> None:
    rng = random.Random(11)
    values = {f"cred{n}": [(1, rng.randbytes(24).hex().encode()), (2, base64.b64encode(rng.randbytes(30)))]
              for n in range(20)}
    known = KnownValues(values)
    lorem = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. " * 50
    ids = b"\n".join(str(uuid.UUID(int=rng.getrandbits(128), version=4)).encode() for _ in range(200))
    digests = b"\n".join(hashlib.sha256(str(n).encode()).hexdigest().encode() for n in range(200))
    assert known.scan_bytes(lorem + ids + digests, "f") == []


VALUE_ALPHABET = "GHJKLMNPQRSTUVWXYZ0123456789"  # no a-f or A-F: hex forms cannot occur in the text
TEXT_ALPHABET = "ghijklmnopqrstuvwxyz \n"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.text(VALUE_ALPHABET, min_size=8, max_size=24), min_size=1, max_size=4, unique=True),
       data=st.data())
def test_random_values_inserted_anywhere_and_chunked_anyhow_are_each_found_once_in_place(
        values: list[str], data: st.DataObject) -> None:
    known = KnownValues({f"c{index}": [(index, value.encode())] for index, value in enumerate(values)})
    picks = data.draw(st.lists(st.integers(0, len(values) - 1), max_size=5))
    texts = data.draw(st.lists(st.text(TEXT_ALPHABET, min_size=1, max_size=30), min_size=len(picks) + 1,
                               max_size=len(picks) + 1))
    document, expected = texts[0].encode(), []
    for pick, text in zip(picks, texts[1:]):
        value = values[pick].encode()
        expected.append((len(document), len(document) + len(value)))
        document += value + text.encode()
    cuts = data.draw(st.lists(st.integers(0, len(document)), max_size=10))
    found = [(f.start, f.end) for f in scan_in_chunks(known, document, cuts)]
    assert found == expected
