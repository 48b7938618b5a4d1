"""Every released schema version still opens; files that are not our vaults are refused untouched.

The fixtures are made by ``scripts/make_schema_fixture.py`` (see
``tests/fixtures/vaults/README.md``); the constants below are the content every fixture
holds. Tests only ever open copies.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from aegis_tui.core.actor import Actor
from aegis_tui.core.agents.grants import Grants
from aegis_tui.core.agents.sessions import Sessions
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import RefusedError, UnlockError, VaultFileError
from aegis_tui.core.models import Kind, Status, VersionState
from aegis_tui.core.secret import Secret
from aegis_tui.core.store.schema import CURRENT_VERSION
from aegis_tui.core.store.sqlite import SqliteStore
from aegis_tui.core.vault import Vault

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vaults"
VERSIONS = list(range(1, CURRENT_VERSION + 1))

# What every fixture holds (kept in step with scripts/make_schema_fixture.py).
ENV_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
PASSPHRASE = "fixture passphrase: test only"
START = 1_767_225_600.0
DAY = 86400.0
ROTATED_AT = START + 10 * DAY
OVERLAP_SECONDS = 7 * 86400
VALUES = {
    "github-token": "ghp_FIXTUREtestONLY0000000000000000000000",
    "deploy-key": (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "Zml4dHVyZSB0ZXN0IGtleSwgbm90IGEgcmVhbCBrZXk=\n"
        "dGVzdCBvbmx5IHRlc3Qgb25seSB0ZXN0IG9ubHk=\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
    ),
    "prod-db": "postgres://app:fixture-new-pw@db.invalid:5432/app",
}
PROD_DB_V1 = "postgres://app:fixture-old-pw@db.invalid:5432/app"
REVOKED_NAME = "old-api-key"
AUDIT_OPERATIONS = ["init", "add", "add", "add", "add", "rotate", "read", "revoke", "unlock", "unlock"]
LATER_OPERATIONS = {2: ["session.start", "grant.create"]}  # what fixtures from that schema on also hold
ACTOR = Actor(user="tester", uid=1000, pid=1, program="pytest", parent_pid=0, parent="", session_id=None)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fixture_path(schema: int) -> Path:
    path = FIXTURES / f"v{schema}.db"
    if not path.is_file():
        pytest.fail(
            f"no vault fixture for schema version {schema}: run scripts/make_schema_fixture.py "
            f"on the release that introduced it and commit {path.name}"
        )
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def private_copy(source: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    folder.mkdir(mode=0o700)
    os.chmod(folder, 0o700)
    target = folder / "vault.db"
    shutil.copyfile(source, target)
    os.chmod(target, 0o600)
    return target


# -- every released version opens ------------------------------------------------------------------------
@pytest.mark.parametrize("schema", VERSIONS)
def test_a_fixture_exists_for_every_schema_version(schema: int) -> None:
    with closing(sqlite3.connect(f"file:{fixture_path(schema)}?mode=ro&immutable=1", uri=True)) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == schema


def test_no_fixture_claims_a_schema_newer_than_the_code() -> None:
    assert not (FIXTURES / f"v{CURRENT_VERSION + 1}.db").exists()


@pytest.mark.parametrize("schema", VERSIONS)
def test_old_vault_is_migrated_with_a_backup_and_reads_back(schema: int, tmp_path: Path) -> None:
    source = fixture_path(schema)
    before = sha256(source)
    path = private_copy(source, tmp_path)

    store = SqliteStore.open(path)
    assert store.schema_version == CURRENT_VERSION
    store.close()
    backup = Path(f"{path}.schema{schema}.bak")
    if schema < CURRENT_VERSION:
        with closing(sqlite3.connect(backup)) as raw:
            assert raw.execute("PRAGMA user_version").fetchone()[0] == schema
    else:
        assert not backup.exists()  # nothing to migrate, nothing copied

    clock = Clock(ROTATED_AT + DAY)  # inside prod-db's overlap window
    vault = Vault.open(path, clock=clock, actor=ACTOR)
    try:
        assert not vault.is_unlocked
        locked_report = vault.audit.verify()
        assert locked_report.ok, locked_report.problems
        later = [op for version, ops in LATER_OPERATIONS.items() if schema >= version for op in ops]
        assert locked_report.entries == len(AUDIT_OPERATIONS) + len(later)
        assert locked_report.unsigned_tail == 0

        vault.unlock_with_env_key(ENV_KEY)
        creds = Credentials(vault)
        assert sorted(c.name for c in creds.list()) == sorted([*VALUES, REVOKED_NAME])
        for name, value in VALUES.items():
            assert creds.reveal(name).reveal_text() == value, name

        github = creds.find("github-token")
        assert (github.kind, github.service, github.context) == (Kind.ACCESS_TOKEN, "github", "personal")
        assert github.tags == ("ci", "scm")
        assert github.notes == "fixture credential\nsecond line"
        assert (github.url, github.expires, github.rotation_days) == ("https://github.invalid", "2027-03-31", 90)
        assert dict(github.fields) == {"scope": "repo", "owner": "fixture"}
        assert creds.find("deploy-key").kind is Kind.SSH_KEY

        assert creds.reveal("prod-db", version=1).reveal_text() == PROD_DB_V1
        states = [(v.version, v.state) for v in creds.versions("prod-db")]
        assert states == [(1, VersionState.PREVIOUS), (2, VersionState.CURRENT)]
        assert creds.versions("prod-db")[0].retires_at == ROTATED_AT + OVERLAP_SECONDS

        if schema >= 2:
            [session] = Sessions(vault).list()
            assert (session.context, session.label) == ("acme/prod", "fixture agent")
            [grant] = Grants(vault).list(include_inactive=True)
            assert (grant.label, grant.session_id, grant.scopes, grant.uses_left) == ("prod-db", session.id,
                                                                                      ("db:read",), 3)
        assert creds.find(REVOKED_NAME).status is Status.REVOKED
        with pytest.raises(RefusedError):
            creds.reveal(REVOKED_NAME)

        operations = [entry.operation for entry in vault.audit.entries()]
        assert operations[: len(AUDIT_OPERATIONS) + len(later)] == AUDIT_OPERATIONS + later
        assert [e.outcome for e in vault.audit.entries() if e.operation == "unlock"][:2] == ["failed", "ok"]
        report = vault.audit.verify()
        assert report.ok, report.problems
        assert report.unsigned_tail == 0

        vault.lock()
        with pytest.raises(UnlockError):
            vault.unlock_with_passphrase(Secret("not " + PASSPHRASE))
        vault.unlock_with_passphrase(Secret(PASSPHRASE))
        assert Credentials(vault).reveal("github-token").reveal_text() == VALUES["github-token"]
        assert vault.audit.verify().ok
    finally:
        vault.close()
    assert sha256(source) == before  # the committed fixture itself is never touched
    assert sorted(p.name for p in FIXTURES.iterdir() if p.name.startswith(f"v{schema}.db")) == [f"v{schema}.db"]


# -- files that are not vaults we can open -------------------------------------------------------------------
def newer_schema(tmp_path: Path) -> bytes:
    path = private_copy(fixture_path(CURRENT_VERSION), tmp_path / "make")
    with closing(sqlite3.connect(path)) as raw:
        raw.execute(f"PRAGMA user_version = {CURRENT_VERSION + 1}")
    return path.read_bytes()


def plain_sqlite(tmp_path: Path) -> bytes:
    path = tmp_path / "make" / "plain.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE notes (body TEXT)")
    raw.execute("INSERT INTO notes VALUES ('someone else''s database')")
    raw.commit()
    raw.close()
    return path.read_bytes()


def plain_sqlite_in_wal_mode(tmp_path: Path) -> bytes:
    path = tmp_path / "make" / "plain-wal.db"
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("CREATE TABLE t (x)")
    raw.commit()
    raw.close()
    return path.read_bytes()


def empty(tmp_path: Path) -> bytes:
    return b""


def truncated(tmp_path: Path) -> bytes:
    return fixture_path(CURRENT_VERSION).read_bytes()[:100]


def truncated_to_one_page(tmp_path: Path) -> bytes:
    return fixture_path(CURRENT_VERSION).read_bytes()[:4096]


def random_bytes(tmp_path: Path) -> bytes:
    return random.Random(20260101).randbytes(3 * 4096)


def sqlite_magic_then_garbage(tmp_path: Path) -> bytes:
    return b"SQLite format 3\x00" + random.Random(7).randbytes(4096)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (newer_schema, "newer"),
        (plain_sqlite, "not an aegis-vault vault"),
        (plain_sqlite_in_wal_mode, "not an aegis-vault vault"),
        (empty, "empty"),
        (truncated, "not an aegis-vault vault"),
        (truncated_to_one_page, "not an aegis-vault vault"),
        (random_bytes, "not an aegis-vault vault"),
        (sqlite_magic_then_garbage, "not an aegis-vault vault"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_unopenable_file_raises_vault_file_error_and_is_left_byte_identical(make, message: str,
                                                                           tmp_path: Path) -> None:
    (tmp_path / "make").mkdir()
    content = make(tmp_path)
    folder = tmp_path / "target"
    folder.mkdir(mode=0o700)
    os.chmod(folder, 0o700)
    path = folder / "vault.db"
    path.write_bytes(content)
    os.chmod(path, 0o600)

    with pytest.raises(VaultFileError, match=message) as caught:
        Vault.open(path)
    assert type(caught.value) is VaultFileError
    assert str(path) in str(caught.value)
    assert path.read_bytes() == content
    assert [p.name for p in folder.iterdir()] == ["vault.db"]  # no companions or backups left behind


def test_newer_schema_message_says_to_upgrade(tmp_path: Path) -> None:
    (tmp_path / "make").mkdir()
    content = newer_schema(tmp_path)
    path = private_copy(fixture_path(CURRENT_VERSION), tmp_path)
    path.write_bytes(content)
    with pytest.raises(VaultFileError, match=f"schema {CURRENT_VERSION + 1}.*upgrade aegis-vault"):
        SqliteStore.open(path)
