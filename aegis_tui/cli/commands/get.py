"""``aegis-vault get``: print one value and nothing else.

The hottest path there is (agents call it in loops): a plain ``get NAME`` with a broker
running never gets here; ``cli/fast_get.py`` answers it with one socket round trip.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing or argparse on the hot path
if TYPE_CHECKING:
    import argparse

    from aegis_tui.core.secret import Secret


def get(args: argparse.Namespace) -> int:
    """Through the broker when one runs (a grant or an approval), else unlocking here.
    An old version (``--version``) is for the vault's owner: never through the broker."""
    if args.value_version is not None:
        name, value, status = _old_version(args)
    else:
        from aegis_tui.core.access import open_access
        from aegis_tui.core.paths import vault_path

        access = open_access(vault_path(), lambda: _unlocked(args))
        try:
            name, value, status = access.get(args.name, reason=args.reason)
        finally:
            access.close()
    return _print(name, value, status)


def _print(name: str, value: Secret, status: str) -> int:
    if status == "exposed":
        sys.stderr.write(f"aegis-vault: warning: {name!r} is marked exposed; rotate it\n")
    out = sys.stdout.buffer
    out.write(value.reveal())
    if sys.stdout.isatty():
        out.write(b"\n")
    out.flush()
    return 0


def _unlocked(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from aegis_tui.cli.unlock import open_unlocked

    return open_unlocked(args)


def _old_version(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from aegis_tui.core.agents.policy import resolve_visible
    from aegis_tui.core.operations.caller import session_of_this_process
    from aegis_tui.core.credentials import Credentials

    with _unlocked(args) as vault:
        credentials = Credentials(vault)
        credential = resolve_visible(credentials, args.name, session_of_this_process(vault))
        value = credentials.reveal(credential.name, version=args.value_version, allow_retired=args.retired)
        return credential.name, value, str(credential.status)
