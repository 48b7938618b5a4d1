"""``wire.dumps`` and ``wire.loads``: the broker's JSON without importing ``json``.

They exist only to keep ``re`` out of every ``run`` and broker call (see wire.py), so
they must agree with ``json`` exactly: byte for byte when writing, value for value
when reading, and refuse what ``json.loads`` refuses.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aegis_tui.core.broker import wire

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text()
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner)
    | st.dictionaries(st.text() | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False), inner,
                      max_size=5),
    max_leaves=30,
)


def _same(a: object, b: object) -> bool:
    """Equal, counting NaN as equal to NaN (json reads 'NaN' back as a NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@given(documents)
def test_dumps_writes_exactly_what_json_dumps_writes(value):
    assert wire.dumps(value) == json.dumps(value, separators=(",", ":"))


@given(documents)
def test_loads_reads_back_what_json_reads(value):
    text = json.dumps(value, indent=1)
    assert _same(wire.loads(text), json.loads(text))
    assert _same(wire.loads(text.encode()), json.loads(text))


@given(st.text(max_size=30) | st.binary(max_size=30).map(lambda raw: raw.decode("utf-8", "replace")))
def test_loads_refuses_whatever_json_loads_refuses(text):
    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            wire.loads(text)
    else:
        assert _same(wire.loads(text), expected)


@pytest.mark.parametrize("bad", [b"", b" ", b"{", b'{"a":1} x', b"nul", b'"\x01"', b"\xff", b"[1,]", b"01"])
def test_loads_raises_value_error_on_broken_input(bad):
    with pytest.raises(ValueError):
        wire.loads(bad)


def test_dumps_refuses_what_json_cannot_write():
    with pytest.raises(TypeError):
        wire.dumps({"value": b"bytes"})
    with pytest.raises(TypeError):
        wire.dumps({("a", "tuple"): 1})


def test_lone_surrogates_are_written_as_json_escapes_like_json_does():
    assert wire.dumps({"ref": "caf\udcc3"}) == json.dumps({"ref": "caf\udcc3"}, separators=(",", ":"))


def test_importing_the_wire_and_the_client_loads_no_json_re_or_socket_module():
    code = ("import sys\nimport aegis_tui.core.broker.client\n"
            "print(','.join(m for m in ('json', 're', 'socket', 'enum', 'typing') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
