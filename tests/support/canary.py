"""Canary checks: does a secret value show up in some bytes, in any form that gives it away?

Computed here from first principles (not with the product's ``needles_for``), so the
tests check the masker against an independent idea of "what reveals a value". Results
name the *forms* that leaked ("hex", "base64+1"), never the value, so a failing
assertion message cannot itself leak it.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from urllib.parse import quote, quote_plus


def _inner_base64(value: bytes, offset: int, encode) -> bytes:  # type: ignore[no-untyped-def]
    """The characters of ``encode(prefix + value + suffix)`` that depend on ``value`` alone,
    when ``value`` starts ``offset`` bytes into a 3-byte group (any prefix, any suffix)."""
    encoded = encode(bytes(offset) + value + bytes(3))
    first = -(-8 * offset // 6)  # the first character made only of the value's bits
    last = (8 * offset + 8 * len(value)) // 6  # one past the last such character
    return encoded[first:last]


def forms_of(value: bytes) -> dict[str, bytes]:
    """Every way of printing ``value`` that reveals it, by a short name."""
    forms = {
        "raw": value,
        "hex": binascii.hexlify(value),
        "HEX": binascii.hexlify(value).upper(),
        "base64": base64.b64encode(value),
        "base64url": base64.urlsafe_b64encode(value),
        "url": quote(value, safe="").encode(),
        "url+": quote_plus(value, safe="").encode(),
    }
    for offset in range(3):
        forms[f"base64@{offset}"] = _inner_base64(value, offset, base64.b64encode)
        forms[f"base64url@{offset}"] = _inner_base64(value, offset, base64.urlsafe_b64encode)
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        forms["json"] = json.dumps(text)[1:-1].encode()
        forms["json-utf8"] = json.dumps(text, ensure_ascii=False)[1:-1].encode()
    return forms


def leaked_forms(data: bytes, value: bytes | str) -> list[str]:
    """The names of the forms of ``value`` found in ``data`` (empty: no leak)."""
    raw = value.encode() if isinstance(value, str) else value
    return sorted(name for name, form in forms_of(raw).items() if form and form in data)


def files_leaking(root: Path, value: bytes | str, *, extra: tuple[bytes, ...] = ()) -> list[str]:
    """Files under ``root`` holding ``value`` in any revealing form (or any ``extra`` needle),
    as "relative path: forms" lines."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        hits = leaked_forms(data, value) + [f"extra#{i}" for i, needle in enumerate(extra) if needle in data]
        if hits:
            found.append(f"{path.relative_to(root)}: {', '.join(hits)}")
    return found
