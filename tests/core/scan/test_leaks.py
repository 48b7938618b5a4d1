"""``load_leaks`` groups what the audit log knows of leaks by credential: scan findings
and values masked out of ``run`` output, deduplicated locations, newest first."""

from __future__ import annotations

from pathlib import Path

import pytest

from aegis_tui.core.credentials import Credentials
from aegis_tui.core.models import Status
from aegis_tui.core.scan.exposure import record_exposures, vault_known_values
from aegis_tui.core.scan.leaks import RUN_MASKING, SCAN, load_leaks
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault

KEY = "7d" * 32
STRIPE = "sk_live_LeaksCanaryStripe00000001"
SLACK = "xoxb-leaks-canary-slack-000000002"
QUIET = "quiet-never-leaked-canary-0000003"


class Clock:
    def __init__(self) -> None:
        self.now = 1795000000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def vault(tmp_path: Path, clock: Clock):  # type: ignore[no-untyped-def]
    made, _ = Vault.create(tmp_path / "v" / "vault.db", passphrase=None, kdf=None, env_key=KEY, clock=clock)
    credentials = Credentials(made)
    credentials.add("stripe", Secret(STRIPE), context="acme/prod")
    credentials.add("slack", Secret(SLACK))
    credentials.add("quiet", Secret(QUIET))
    yield made
    made.close()


def scan(vault: Vault, text: str, path: str) -> None:
    known = vault_known_values(vault)
    record_exposures(vault, known.scan_bytes(text.encode(), path), via="aegis-vault scan")


def masked_run(vault: Vault, command: str, masked: dict[str, int]) -> None:
    vault.audit.append("run", vault.actor, target=command, detail={"masked": masked, "exit_code": 0})


def test_scan_findings_are_grouped_by_credential_with_their_locations_and_exposure(vault, clock) -> None:
    scan(vault, f"a: {STRIPE}\nb: {STRIPE}\n", "deploy/config.yml")
    clock.now += 60
    scan(vault, f"token={STRIPE}\n", "ci/env.sh")
    leaks = load_leaks(vault.audit)
    assert [leak.name for leak in leaks] == ["stripe"]
    stripe = leaks[0]
    assert stripe.context == "acme/prod"
    assert stripe.count == 3
    assert stripe.via == [SCAN]
    assert stripe.exposed
    assert stripe.encodings == ["raw"]
    assert stripe.locations[0].startswith("ci/env.sh:1:")
    assert [loc.split(":")[0] for loc in stripe.locations] == ["ci/env.sh", "deploy/config.yml", "deploy/config.yml"]
    assert stripe.first_seen == 1795000000.0 and stripe.last_seen == 1795000060.0


def test_a_location_found_again_is_listed_once_on_top(vault, clock) -> None:
    scan(vault, f"x {STRIPE}\n", "a.txt")
    clock.now += 10
    scan(vault, f"x {STRIPE}\n", "b.txt")
    clock.now += 10
    scan(vault, f"x {STRIPE}\n", "a.txt")
    stripe = load_leaks(vault.audit)[0]
    assert stripe.locations == ["a.txt:1:3", "b.txt:1:3"]
    assert stripe.count == 3


def test_masked_run_output_is_counted_and_does_not_mean_exposed(vault, clock) -> None:
    masked_run(vault, "make deploy", {"slack": 2})
    clock.now += 5
    masked_run(vault, "make test", {"slack": 1, "stripe": 0})
    leaks = load_leaks(vault.audit)
    assert [leak.name for leak in leaks] == ["slack"]  # a zero count is no leak
    slack = leaks[0]
    assert slack.count == 3
    assert slack.via == [RUN_MASKING]
    assert not slack.exposed
    assert slack.locations == ["run: make test", "run: make deploy"]


def test_scan_and_masking_of_one_credential_make_one_group_newest_first(vault, clock) -> None:
    masked_run(vault, "make deploy", {"stripe": 4})
    clock.now += 5
    scan(vault, f"{SLACK}\n", "notes.md")
    clock.now += 5
    scan(vault, f"{STRIPE}\n", "leak.txt")
    leaks = load_leaks(vault.audit)
    assert [leak.name for leak in leaks] == ["stripe", "slack"]
    assert leaks[0].via == [SCAN, RUN_MASKING]
    assert leaks[0].count == 5
    assert leaks[0].context == "acme/prod"


def test_rotation_or_a_status_change_clears_exposed(vault, clock) -> None:
    scan(vault, f"{STRIPE} {SLACK}\n", "leak.txt")
    credentials = Credentials(vault)
    credentials.rotate("stripe", Secret("sk_live_LeaksCanaryStripe00000009"))
    credentials.set_status("slack", Status.ACTIVE, reason="false positive")
    assert [leak.exposed for leak in load_leaks(vault.audit)] == [False, False]
    by_name = {leak.name: leak.exposed for leak in load_leaks(vault.audit, exposed=["STRIPE"])}
    assert by_name == {"stripe": True, "slack": False}
