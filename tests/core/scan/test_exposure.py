"""A scan that finds the vault's own values marks those credentials exposed and audits
where, never what."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from aegis_tui.core.credentials import Credentials
from aegis_tui.core.models import Status
from aegis_tui.core.scan.exposure import record_exposures, vault_known_values
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault

KEY = "7c" * 32
OLD = "sk_live_OldExposureCanary00000001"
NEW = "sk_live_NewExposureCanary00000002"
OTHER = "xoxb-other-not-leaked-0000000003"


@pytest.fixture
def vault(tmp_path: Path):  # type: ignore[no-untyped-def]
    made, _ = Vault.create(tmp_path / "v" / "vault.db", passphrase=None, kdf=None, env_key=KEY)
    credentials = Credentials(made)
    credentials.add("stripe", Secret(OLD), context="acme/prod")
    credentials.rotate("stripe", Secret(NEW), overlap_seconds=0)  # OLD is retired now
    credentials.add("slack", Secret(OTHER))
    yield made
    made.close()


def test_a_retired_value_found_in_a_file_marks_its_credential_exposed_and_audits_the_location(vault) -> None:
    known = vault_known_values(vault)
    text = f"line one\nconfig: {base64.b64encode(OLD.encode()).decode()}\n".encode()
    findings = known.scan_bytes(text, "deploy/config.yml")
    assert [(f.credential, f.version, f.encoding) for f in findings] == [("stripe", 1, "base64")]
    assert record_exposures(vault, findings, via="aegis-vault scan") == ["stripe"]
    assert Credentials(vault).find("stripe").status is Status.EXPOSED
    assert Credentials(vault).find("slack").status is Status.ACTIVE
    [leak] = [e for e in vault.audit.entries() if e.operation == "leak.found"]
    assert leak.detail["locations"] == ["deploy/config.yml:2:9"]
    assert leak.detail["encodings"] == ["base64"] and leak.detail["versions"] == [1]
    exported = "\n".join(str(e.to_export()) for e in vault.audit.entries())
    leaked = any(value in exported for value in (OLD, NEW, base64.b64encode(OLD.encode()).decode()))
    assert not leaked


def test_loading_the_values_for_a_scan_is_one_audit_entry_not_one_read_per_value(vault) -> None:
    before = vault.audit.tail(1)[0].seq
    vault_known_values(vault)
    operations = [e.operation for e in vault.audit.entries(after_seq=before)]
    assert operations == ["scan.load"]


def test_an_already_exposed_credential_is_audited_again_but_not_marked_twice(vault) -> None:
    known = vault_known_values(vault)
    findings = known.scan_bytes(NEW.encode(), "a.log")
    record_exposures(vault, findings, via="scan")
    record_exposures(vault, findings, via="scan")
    operations = [e.operation for e in vault.audit.entries()]
    assert operations.count("leak.found") == 2 and operations.count("status.exposed") == 1


def test_findings_of_rules_alone_mark_nothing(vault) -> None:
    from aegis_tui.core.scan.rules import default_rules

    findings = default_rules().scan('token = "ghp_' + "Zq8x" * 9 + '"\n', "a.py")
    assert findings and record_exposures(vault, findings, via="scan") == []
