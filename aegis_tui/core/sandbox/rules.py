"""The user's sandbox rules: ``~/.config/aegis-vault/sandbox.toml``.

::

    hide = ["~/work/secrets", "~/.kube/config"]     # more to hide
    read_only = ["~/.gitconfig"]                    # more to make read-only
    allow = ["~/.aws"]                              # take a default hidden place back

Paths are absolute or start with ``~``. Anything else (an unknown key, a relative path,
a value that is not a list of strings, TOML that does not parse) is refused with one
line naming the file and the problem: a rules file that half-applies would leave the
user believing something is hidden that is not. The file lives in the config folder,
which the sandbox hides, so an agent can neither read nor rewrite its own rules.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from aegis_tui.core.errors import UsageError

RULES_FILENAME = "sandbox.toml"
_KEYS = ("hide", "read_only", "allow")


class Rules(NamedTuple):
    """Absolute, user-expanded paths, in the order the file gives them."""

    hide: tuple[str, ...] = ()
    read_only: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()


def load_rules(path: str, home: str) -> Rules:
    """The rules in ``path`` (no file: no rules); ``~`` means ``home``."""
    import tomllib

    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return Rules()
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: not valid TOML ({error})") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot read it ({error.strerror})") from None
    return _validated(data, path, home)


def _validated(data: dict[str, Any], where: str, home: str) -> Rules:
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(_KEYS)})")
    lists: dict[str, tuple[str, ...]] = {}
    for key in _KEYS:
        raw = data.get(key, [])
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            raise UsageError(f"{where}: {key} must be a list of paths (strings)")
        lists[key] = tuple(_absolute(item, key, where, home) for item in raw)
    return Rules(**lists)


def _absolute(raw: str, key: str, where: str, home: str) -> str:
    if "\0" in raw or not raw.strip():
        raise UsageError(f"{where}: {key} has an empty or malformed path")
    if raw == "~" or raw.startswith("~/"):
        raw = home + raw[1:]
    if not os.path.isabs(raw):
        raise UsageError(f"{where}: {key} path {raw!r} must be absolute or start with ~/")
    return os.path.normpath(raw)
