"""Where the vault lives, and the file-permission rules it must satisfy.

The vault is one SQLite file (plus SQLite's ``-wal``/``-shm`` companions) in a folder
only the owner can enter. We refuse to open a vault that group or others can read:
the file is encrypted, but an open file invites copying, and copies are how offline
attacks on the passphrase begin.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from aegis_tui.core.errors import VaultFileError

VAULT_FILENAME = "vault.db"
_COMPANIONS = ("-wal", "-shm")


def vault_home(environ: dict[str, str] | None = None) -> Path:
    """``$AEGIS_VAULT_HOME``, else ``$XDG_DATA_HOME/aegis-vault``, else ``~/.local/share/aegis-vault``."""
    env = os.environ if environ is None else environ
    explicit = env.get("AEGIS_VAULT_HOME")
    if explicit:
        return Path(explicit).expanduser()
    data_home = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "aegis-vault"


def vault_path(environ: dict[str, str] | None = None) -> Path:
    return vault_home(environ) / VAULT_FILENAME


def ensure_private_folder(folder: Path) -> None:
    """Create the folder 0700 if needed; tighten nothing silently that already exists."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_not_shared(folder, is_folder=True)


def check_not_shared(path: Path, *, is_folder: bool = False) -> None:
    """Refuse a path that group or others may read, naming the exact fix."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if stat.S_IMODE(mode) & 0o077:
        wanted = "700" if is_folder else "600"
        raise VaultFileError(
            f"{path} is accessible to group or others (mode {stat.S_IMODE(mode):04o}); "
            f"fix it with: chmod {wanted} {path}"
        )


def check_vault_permissions(path: Path) -> None:
    """The vault file, its SQLite companions and its folder must all be private."""
    check_not_shared(path.parent, is_folder=True)
    check_not_shared(path)
    for suffix in _COMPANIONS:
        check_not_shared(path.with_name(path.name + suffix))
