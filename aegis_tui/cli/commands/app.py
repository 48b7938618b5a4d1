"""``aegis-vault`` (no command) opens the app; ``aegis-vault demo`` opens it on a throwaway vault.

The only commands that import Textual, and only inside these functions. The app holds
the key and decrypted values once unlocked, so both make the process unreadable to the
user's other processes before anything else (``core.hardening.protect_process``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile

from aegis_tui.cli.terminal import err
from aegis_tui.cli.unlock import open_vault
from aegis_tui.core.config import load_settings
from aegis_tui.core.hardening import protect_process


def run_app(args: argparse.Namespace) -> int:
    protect_process()
    settings = load_settings()
    with open_vault() as vault:
        from aegis_tui.tui.app import AegisApp

        AegisApp(vault, settings=settings).run()
    return 0


def demo(args: argparse.Namespace) -> int:
    from aegis_tui.core.crypto import calibrate_kdf, new_kdf_params
    from aegis_tui.core.demo import DEMO_PASSPHRASE, create_demo_vault

    protect_process()
    settings = load_settings()
    fast = os.environ.get("AEGIS_VAULT_INSECURE_FAST_KDF") == "1"
    kdf = new_kdf_params(memory_kib=8, iterations=1, lanes=1) if fast else calibrate_kdf()
    folder = tempfile.mkdtemp(prefix="aegis-vault-demo-")
    try:
        err(f"aegis-vault: demo vault in {folder} (deleted on exit); passphrase: {DEMO_PASSPHRASE}")
        with create_demo_vault(folder, kdf) as vault:
            from aegis_tui.tui.app import AegisApp

            AegisApp(vault, settings=settings, demo_passphrase=DEMO_PASSPHRASE).run()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0
