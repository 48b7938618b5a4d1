#!/usr/bin/env python3
"""Write ``tests/fixtures/vaults/v{N}.db``: a small vault at the current schema version N.

Run once per released schema version, from the repository root, and commit the file:

    .venv/bin/python scripts/make_schema_fixture.py

Every fixture holds the same content, written through the public core API of the
release that made it, so that ``tests/core/store/test_schema_migrations.py`` can open
each one with today's code (migrating it), unlock it and read it back:

- unlock slots: passphrase (``PASSPHRASE``, Argon2id at the cheapest test settings),
  env (``ENV_KEY``, an ``AEGIS_VAULT_KEY``-style 64-hex key) and recovery (code not kept);
- credentials: ``github-token`` (access_token, with service, tags, notes, url, expiry
  and custom fields), ``deploy-key`` (a multi-line ssh_key), ``prod-db`` (rotated once:
  versions 1 and 2) and ``old-api-key`` (revoked);
- audit entries for all of that, including a failed unlock written while locked, signed
  over by the unlock that followed;
- from schema 2 on: an agent session (context ``acme/prod``, label ``fixture agent``,
  7 days) and a grant of ``prod-db`` to it (scope ``db:read``, 3 uses, 1 hour).

The clock and the actor are fixed so nothing about the machine that ran this lands in
the file. Every key and passphrase here is a published test value: never reuse them.
An existing fixture is never overwritten (released fixtures must not change) unless
``--force`` is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from aegis_tui.core.actor import Actor  # noqa: E402
from aegis_tui.core.agents.grants import Grants  # noqa: E402
from aegis_tui.core.agents.sessions import Sessions  # noqa: E402
from aegis_tui.core.credentials import Credentials  # noqa: E402
from aegis_tui.core.crypto import new_kdf_params  # noqa: E402
from aegis_tui.core.errors import UnlockError  # noqa: E402
from aegis_tui.core.models import Kind, Status  # noqa: E402
from aegis_tui.core.secret import Secret  # noqa: E402
from aegis_tui.core.store.schema import CURRENT_VERSION  # noqa: E402
from aegis_tui.core.vault import Vault  # noqa: E402

# Test-only secrets. They are public: they are in this file and in the README.
ENV_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
PASSPHRASE = "fixture passphrase: test only"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86400.0
ROTATED_AT = START + 10 * DAY
OVERLAP_SECONDS = 7 * 86400
REVOKED_AT = START + 11 * DAY

GITHUB_VALUE = "ghp_FIXTUREtestONLY0000000000000000000000"
DEPLOY_KEY_VALUE = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "Zml4dHVyZSB0ZXN0IGtleSwgbm90IGEgcmVhbCBrZXk=\n"
    "dGVzdCBvbmx5IHRlc3Qgb25seSB0ZXN0IG9ubHk=\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
DB_VALUE_V1 = "postgres://app:fixture-old-pw@db.invalid:5432/app"
DB_VALUE_V2 = "postgres://app:fixture-new-pw@db.invalid:5432/app"
OLD_API_VALUE = "sk_fixture_revoked_0000"

FIXTURE_ACTOR = Actor(user="fixture", uid=1000, pid=1000, program="make_schema_fixture", parent_pid=1,
                      parent="init", session_id=None)


class FixedClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def build(path: str) -> None:
    clock = FixedClock(START)
    kdf = new_kdf_params(memory_kib=8, iterations=1, lanes=1)
    vault, _recovery = Vault.create(path, passphrase=Secret(PASSPHRASE), kdf=kdf, env_key=ENV_KEY,
                                    clock=clock, actor=FIXTURE_ACTOR)
    creds = Credentials(vault)
    creds.add("github-token", Secret(GITHUB_VALUE), kind=Kind.ACCESS_TOKEN, service="github",
              context="personal", tags=["ci", "scm"], notes="fixture credential\nsecond line",
              url="https://github.invalid", expires="2027-03-31", rotation_days=90,
              fields={"scope": "repo", "owner": "fixture"})
    creds.add("deploy-key", Secret(DEPLOY_KEY_VALUE), kind=Kind.SSH_KEY, service="deploy")
    creds.add("prod-db", Secret(DB_VALUE_V1), kind=Kind.CONNECTION_STRING, context="acme/prod")
    creds.add("old-api-key", Secret(OLD_API_VALUE), kind=Kind.API_KEY)
    clock.now = ROTATED_AT
    creds.rotate("prod-db", Secret(DB_VALUE_V2), overlap_seconds=OVERLAP_SECONDS)
    creds.reveal("github-token")
    clock.now = REVOKED_AT
    creds.set_status("old-api-key", Status.REVOKED, reason="fixture")
    vault.close()

    clock.now = REVOKED_AT + 60
    vault = Vault.open(path, clock=clock, actor=FIXTURE_ACTOR)
    try:
        vault.unlock_with_passphrase(Secret("not the fixture passphrase"))
    except UnlockError:
        pass
    else:  # pragma: no cover - would mean the vault accepts any passphrase
        raise SystemExit("a wrong passphrase unlocked the fixture vault")
    vault.unlock_with_env_key(ENV_KEY)
    session = Sessions(vault).start("acme/prod", 7 * 86400, label="fixture agent")
    Grants(vault).create(credential=Credentials(vault).find("prod-db"), session_id=session.id, scopes=["db:read"],
                         uses=3, ttl_seconds=3600, reason="fixture grant")
    report = vault.audit.verify()
    if not report.ok or report.unsigned_tail:
        raise SystemExit(f"the fixture's audit chain does not verify: {report!r}")
    vault.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "vaults"),
                        help="folder to write v{N}.db into (default: tests/fixtures/vaults)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing fixture")
    args = parser.parse_args()
    target = os.path.join(args.out, f"v{CURRENT_VERSION}.db")
    if os.path.exists(target) and not args.force:
        print(f"{target} exists; released fixtures never change (use --force for an unreleased one)",
              file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as scratch:
        os.chmod(scratch, 0o700)
        path = os.path.join(scratch, "vault.db")
        build(path)
        leftovers = [name for name in os.listdir(scratch) if name != "vault.db"]
        if leftovers:
            raise SystemExit(f"the vault left companions after close: {leftovers}")
        os.makedirs(args.out, exist_ok=True)
        shutil.copyfile(path, target)
    print(f"wrote {os.path.relpath(target, ROOT)} (schema {CURRENT_VERSION})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
