"""User settings in ``$XDG_CONFIG_HOME/aegis-vault/config.toml``.

Read with ``tomllib``, written with ``tomli_w`` (atomically: a temp file renamed over
the old one, so a crash never leaves half a config). Unknown keys are kept as they
are, so a newer version's settings survive an older version saving. A broken file is
an error that names the file and the problem; nothing is silently reset.

    idle_lock_minutes = 10        # lock after this long without a key press; 0 = never
    reveal_seconds = 20           # a revealed value hides itself after this long
    clipboard_clear_seconds = 30  # a copied value is cleared from the clipboard after this long
    theme = "aegis"

    [keymap]                      # binding id = keys, as in Textual's set_keymap
    "vault.add" = "a,insert"
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from aegis_tui.core.errors import UsageError
from aegis_tui.core.paths import write_private_file

CONFIG_FILENAME = "config.toml"
_LIMITS = {
    "idle_lock_minutes": (0, 24 * 60),
    "reveal_seconds": (3, 600),
    "clipboard_clear_seconds": (5, 3600),
}


class Settings(NamedTuple):
    idle_lock_minutes: int = 10
    reveal_seconds: int = 20
    clipboard_clear_seconds: int = 30
    theme: str = "aegis"
    keymap: dict[str, str] = {}
    extra: dict[str, Any] = {}  # keys this version does not know, kept for round trips


def config_dir(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "aegis-vault")


def config_path(environ: dict[str, str] | None = None) -> str:
    return os.path.join(config_dir(environ), CONFIG_FILENAME)


def _validated(data: dict[str, Any], where: str) -> Settings:
    values: dict[str, Any] = {}
    for key, (low, high) in _LIMITS.items():
        if key in data:
            value = data[key]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise UsageError(f"{where}: {key} must be a whole number from {low} to {high}")
            values[key] = value
    if "theme" in data:
        if not isinstance(data["theme"], str) or not data["theme"]:
            raise UsageError(f"{where}: theme must be a theme name")
        values["theme"] = data["theme"]
    keymap = data.get("keymap", {})
    if not isinstance(keymap, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in keymap.items()):
        raise UsageError(f'{where}: [keymap] maps binding ids to keys, e.g. "vault.add" = "a"')
    known = set(_LIMITS) | {"theme", "keymap"}
    extra = {key: value for key, value in data.items() if key not in known}
    return Settings(**values, keymap=dict(keymap), extra=extra)


def load_settings(path: str | None = None) -> Settings:
    """The saved settings, or the defaults when there is no file yet."""
    import tomllib

    path = path or config_path()
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return Settings()
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{path} is not valid TOML ({err}); fix or delete it") from None
    return _validated(data, path)


def save_settings(settings: Settings, path: str | None = None) -> None:
    import tomli_w

    path = path or config_path()
    document: dict[str, Any] = {**settings.extra}
    document.update({key: getattr(settings, key) for key in (*_LIMITS, "theme")})
    if settings.keymap:
        document["keymap"] = dict(settings.keymap)
    _validated(document, path)
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    write_private_file(path, tomli_w.dumps(document).encode("utf-8"))
