"""A wrapper that keeps secret values out of reprs, logs and tracebacks.

Python prints locals in tracebacks and in debuggers; a plain ``bytes`` value would land
there verbatim. ``Secret`` only gives the value up through an explicit call.
"""

from __future__ import annotations


class Secret:
    """An opaque secret value; ``str``/``repr``/``format`` never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes | str) -> None:
        self._value = value.encode("utf-8") if isinstance(value, str) else bytes(value)

    def reveal(self) -> bytes:
        """The raw bytes. Call only at the one place the value must go."""
        return self._value

    def reveal_text(self) -> str:
        return self._value.decode("utf-8", errors="surrogateescape")

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"Secret(<{len(self._value)} bytes hidden>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        from aegis_tui.core.crypto import constant_time_equal

        return constant_time_equal(self._value, other._value)

    def __hash__(self) -> int:  # pragma: no cover - secrets are not dict keys
        raise TypeError("Secret is not hashable")

    def __reduce__(self) -> object:
        raise TypeError("Secret cannot be pickled")
