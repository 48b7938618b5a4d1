"""Where a vault's broker listens: a socket in a private per-user runtime folder.

``$XDG_RUNTIME_DIR/aegis-vault/`` when the session has one (tmpfs, owned by the user,
gone at logout), else ``/tmp/aegis-vault-UID/``. Either way the folder must be ours and
0700, or we refuse: a folder another user controls could swap the socket for theirs.
One socket per vault file, named by the file's device and inode (stable for the
file's life, different for every vault: several vaults, and parallel test runs, never
meet), which costs a ``stat`` and no hashing on the hot path.

Inside a sandboxed agent session (``session exec``) the vault file is hidden and the
runtime folder is an empty tmpfs holding one socket, ``session.sock``: the session's own
socket, which speaks for that session only. So: no vault file, but a ``session.sock``
here, means that socket is the broker. The ordinary path (the vault is there) does not
look for it.
"""

from __future__ import annotations

import os
import stat
import struct

from aegis_tui.core.errors import VaultFileError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    import socket


def runtime_dir(create: bool = True) -> str:
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = os.path.join(base, "aegis-vault") if base and os.path.isdir(base) else f"/tmp/aegis-vault-{os.getuid()}"
    if create:
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        return folder
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise VaultFileError(
            f"the broker folder {folder} is not a private folder of yours (it must be yours and mode 0700); "
            "remove it and try again"
        )
    return folder


SESSION_SOCKET_NAME = "session.sock"


def session_socket_inside() -> str:
    """Where a sandboxed session's socket is bound inside its sandbox."""
    return os.path.join(runtime_dir(create=False), SESSION_SOCKET_NAME)


def _no_vault(vault_path: str) -> VaultFileError:
    return VaultFileError(f"no vault at {vault_path}; create one with: aegis-vault init")


def _stem(vault_path: str) -> str:
    try:
        info = os.stat(vault_path)
    except FileNotFoundError:
        raise _no_vault(vault_path) from None
    return f"vault-{info.st_dev:x}-{info.st_ino:x}"


def socket_path(vault_path: str, create: bool = False) -> str:
    """The broker's socket for this vault; inside a sandboxed session (no vault file,
    a ``session.sock`` in the runtime folder), the session's socket."""
    folder = runtime_dir(create)
    try:
        info = os.stat(vault_path)
    except FileNotFoundError:
        inside = os.path.join(folder, SESSION_SOCKET_NAME)
        if os.path.exists(inside):
            return inside
        raise _no_vault(vault_path) from None
    return os.path.join(folder, f"vault-{info.st_dev:x}-{info.st_ino:x}.sock")


def lock_path(vault_path: str) -> str:
    return os.path.join(runtime_dir(True), _stem(vault_path) + ".lock")


_UCRED = struct.Struct("3i")


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket, from the kernel:
    the broker checks its clients with it, and clients check the broker."""
    import _socket  # the constants, without the enums ``socket`` builds on import

    return _UCRED.unpack(sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, _UCRED.size))


def broker_may_run(vault_path: str) -> bool:
    """Whether a socket for this vault exists: a cheap check before importing the client
    (a command with no broker to ask goes straight to unlocking)."""
    try:
        return os.path.exists(socket_path(vault_path))
    except VaultFileError:
        return False
