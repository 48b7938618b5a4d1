"""Opening and unlocking the vault for one command.

Order: ``--recovery``; ``AEGIS_VAULT_KEY`` (when the vault has an environment slot);
``--passphrase-fd``; the OS keyring slot; a hidden passphrase prompt on the terminal;
otherwise a clear failure naming the ways in. The keyring module is imported only
when a keyring slot exists, keeping ``get`` with the environment slot fast.

Before anything is read, the process makes itself unreadable to the user's other
processes (``core.hardening.protect_process``): from here on it holds the key. And
``AEGIS_VAULT_KEY`` leaves ``os.environ`` the first time it is read, so no child started
afterwards (a hook, git, the command ``run`` starts) can inherit it; the copy kept here
serves a second unlock in the same process (``session exec`` ends its session that way).
"""

from __future__ import annotations

from aegis_tui.cli.terminal import err, has_terminal, prompt_hidden, read_fd_line
from aegis_tui.core.errors import UnlockError
from aegis_tui.core.paths import ENV_KEY_VARIABLE, take_env_key, vault_path

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    import argparse  # only the annotations name it: ~4.5 ms (re, gettext) off every ``run``

    from aegis_tui.core.vault import Vault


def open_vault() -> Vault:
    """Imports the vault (and cryptography) only when a command really opens it: through
    a broker, ``run`` and ``get`` never do."""
    from aegis_tui.core.vault import Vault

    return Vault.open(vault_path())



def unlock(vault: Vault, args: argparse.Namespace, *, prompt: bool = True) -> bool:
    """Unlock with the first method that applies; ``False`` only when ``prompt`` is off
    and nothing non-interactive applies."""
    from aegis_tui.core.hardening import protect_process
    from aegis_tui.core.slots import KeyringUnavailableError, SlotKind

    protect_process()
    env_key = take_env_key()
    kinds = {slot.kind for slot in vault.slots()}
    if getattr(args, "recovery", False):
        code = _read_secret(args, "recovery key")
        vault.unlock_with_recovery(code)
        return True
    if env_key and SlotKind.ENV in kinds:
        vault.unlock_with_env_key(env_key)
        return True
    if getattr(args, "passphrase_fd", None) is not None:
        vault.unlock_with_passphrase(read_fd_line(args.passphrase_fd, "passphrase"))
        return True
    if SlotKind.KEYRING in kinds:
        try:
            vault.unlock_with_keyring()
            return True
        except KeyringUnavailableError as failure:
            if not prompt:
                return False  # `status`: report the vault as locked rather than fail
            if SlotKind.PASSPHRASE not in kinds or not has_terminal():
                raise  # one line that already names the other slots; no prompt can follow
            err(f"aegis-vault: {failure}; asking for the passphrase instead")
    if not prompt:
        return False
    if SlotKind.PASSPHRASE in kinds:
        passphrase = prompt_hidden("Vault passphrase: ")
        if passphrase is not None:
            vault.unlock_with_passphrase(passphrase)
            return True
    ways = []
    if SlotKind.ENV in kinds:
        ways.append(f"set {ENV_KEY_VARIABLE}")
    if SlotKind.PASSPHRASE in kinds:
        ways.append("pass --passphrase-fd N or run in a terminal")
    if SlotKind.RECOVERY in kinds:
        ways.append("use --recovery")
    hint = f" ({'; '.join(ways)})" if ways else ""
    note = f"; {ENV_KEY_VARIABLE} is set but this vault has no environment slot" if env_key and SlotKind.ENV not in kinds else ""
    raise UnlockError(f"cannot unlock the vault without a terminal{hint}{note}")


def _read_secret(args: argparse.Namespace, what: str):  # type: ignore[no-untyped-def]
    if getattr(args, "passphrase_fd", None) is not None:
        return read_fd_line(args.passphrase_fd, what)
    value = prompt_hidden(f"{what.capitalize()}: ")
    if value is None:
        raise UnlockError(f"no terminal to ask for the {what}; pass it with --passphrase-fd N")
    return value


def open_unlocked(args: argparse.Namespace) -> Vault:
    vault = open_vault()
    try:
        unlock(vault, args)
    except BaseException:
        vault.close()
        raise
    return vault


def open_agent_access(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The running broker if there is one (no key derivation, grants and approvals
    apply), else this process unlocks the vault itself."""
    from aegis_tui.core.access import open_access

    return open_access(vault_path(), lambda: open_unlocked(args))
