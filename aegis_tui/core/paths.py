"""Where the vault lives, and the file-permission rules it must satisfy.

The vault is one SQLite file (plus SQLite's ``-wal``/``-shm`` companions) in a folder
only the owner can enter. We refuse to open a vault that group or others can read:
the file is encrypted, but an open file invites copying, and copies are how offline
attacks on the passphrase begin.

Plain ``os.path`` rather than ``pathlib``: this module is on the path of every CLI
call, and ``pathlib`` costs ~4 ms to import.
"""

from __future__ import annotations

import os
import stat

from aegis_tui.core.errors import VaultFileError

VAULT_FILENAME = "vault.db"
SQLITE_COMPANIONS = ("-wal", "-shm")
ENV_KEY_VARIABLE = "AEGIS_VAULT_KEY"  # an environment-slot key: read by slots, kept from run's children
_taken_env_key: str | None = None


def take_env_key() -> str | None:
    """``AEGIS_VAULT_KEY``, taken out of the environment (``os.environ.pop`` unsets it for
    children too) and kept in this process only: whatever a command starts afterwards
    (git for a scan, a hook, the app's editor) never inherits it."""
    global _taken_env_key
    found = os.environ.pop(ENV_KEY_VARIABLE, None)
    if found is not None:
        _taken_env_key = found
    return _taken_env_key


def vault_home(environ: dict[str, str] | None = None) -> str:
    """``$AEGIS_VAULT_HOME``, else ``$XDG_DATA_HOME/aegis-vault``, else ``~/.local/share/aegis-vault``."""
    env = os.environ if environ is None else environ
    explicit = env.get("AEGIS_VAULT_HOME")
    if explicit:
        return os.path.expanduser(explicit)
    data_home = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "aegis-vault")


def vault_path(environ: dict[str, str] | None = None) -> str:
    return os.path.join(vault_home(environ), VAULT_FILENAME)


def ensure_private_folder(folder: str) -> None:
    """Create the folder 0700 if needed; an existing shared folder is refused, not fixed."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    check_not_shared(folder, is_folder=True)


def write_private_file(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once, readable by its owner only: written to a
    0600 temp file, synced, then renamed over the old one, so a crash leaves either the
    old file or the new one, and a file of looser mode before is replaced, not rewritten."""
    temp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def check_not_shared(path: str, *, is_folder: bool = False) -> None:
    """Refuse a path that group or others may access, naming the exact fix."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        wanted = "700" if is_folder else "600"
        raise VaultFileError(
            f"{path} is accessible to group or others (mode {mode:04o}); fix it with: chmod {wanted} {path}"
        )


def check_vault_permissions(path: str) -> None:
    """The vault file, its SQLite companions and its folder must all be private."""
    check_not_shared(os.path.dirname(os.path.abspath(path)), is_folder=True)
    check_not_shared(path)
    for suffix in SQLITE_COMPANIONS:
        check_not_shared(path + suffix)
