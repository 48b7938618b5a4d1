"""``rotation status``, ``rotate --due``, ``compromised`` and expiry through the real CLI."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import assert_one_line_error

CANARY = "canary-lifecycle-value-" + "4be1" * 6


def ok(result):  # type: ignore[no-untyped-def]
    assert result.returncode == 0, (result.returncode, result.err)
    return result


@pytest.fixture
def scheduled(env_vault):  # type: ignore[no-untyped-def]
    """A one-day period is inside the 14-day reminder window at once: due."""
    ok(env_vault("add", "ci-token", "--rotate-every", "1", input=CANARY))
    ok(env_vault("policy", "set", "ci-token", "--generate", "--length", "40", "--prefix", "ci_"))
    ok(env_vault("add", "bank", "--rotate-every", "1", input="bank-value-31"))
    ok(env_vault("add", "steady", "--rotate-every", "90", input="steady-value-77"))
    return env_vault


def test_rotation_status_lists_due_credentials_with_days_and_method(scheduled) -> None:
    rows = json.loads(ok(scheduled("rotation", "status", "--json")).out)
    by_name = {row["name"]: row for row in rows}
    assert [row["name"] for row in rows][-1] == "steady"  # the most urgent first
    assert (by_name["ci-token"]["state"], by_name["ci-token"]["days_left"]) == ("due", 1)
    assert by_name["ci-token"]["policy"] == "generate 40 alnum, prefix ci_"
    assert by_name["bank"]["needs_human"] and not by_name["steady"]["needs_human"]
    text = ok(scheduled("rotation", "status")).out
    assert "ci-token" in text and "1 left" in text
    assert [row["name"] for row in json.loads(ok(scheduled("rotation", "status", "--attention", "--json")).out)] \
        == ["bank", "ci-token"]


def test_rotate_due_rotates_by_policy_and_names_the_manual_ones(scheduled) -> None:
    result = ok(scheduled("rotate", "--due"))
    assert "ci-token: rotated to version 2 (generate 40 alnum, prefix ci_)" in result.err
    assert "bank: due, needs a human: aegis-vault rotate 'bank'" in result.err
    value = ok(scheduled("get", "ci-token")).out
    assert value.startswith("ci_") and len(value) == 43
    assert CANARY not in result.out + result.err


def test_an_expired_credential_is_refused_with_one_line(env_vault) -> None:
    ok(env_vault("add", "old-cert", "--expires", "2020-01-31", input=CANARY))
    result = env_vault("get", "old-cert")
    assert_one_line_error(result, 8, mentions=("expired on 2020-01-31",))
    assert CANARY not in result.out + result.err
    rows = json.loads(ok(env_vault("rotation", "status", "--json")).out)
    assert rows[0]["expiry_days"] < 0


def test_compromised_runs_recovery_and_prints_the_timeline(scheduled) -> None:
    ok(scheduled("grants", "add", "ci-token", "--reason", "ci"))
    result = ok(scheduled("compromised", "ci-token", "--severity", "critical", "--impact", "posted in a log"))
    assert "opened for 'ci-token' (critical)" in result.err
    for step in ("marked exposed", "revoked 1 grant(s)", "rotated to version 2, old value retired at once",
                 "provider revocation of the old value"):
        assert step in result.err
    assert CANARY not in result.out + result.err
    assert json.loads(ok(scheduled("grants", "list", "--json")).out) == []
    [incident] = json.loads(ok(scheduled("incidents", "list", "--json")).out)
    assert (incident["credential"], incident["severity"]) == ("ci-token", "critical")


@pytest.mark.parametrize(("args", "code", "mention"), [
    (("rotate",), 2, "name the credential to rotate"),
    (("rotate", "ci-token", "--due"), 2, "leave out the name"),
    (("compromised", "nothing-here"), 4, "nothing-here"),
    (("compromised", "ci-token", "--severity", "extreme"), 2, "severity"),
])
def test_bad_lifecycle_input_is_one_line_and_changes_nothing(scheduled, args, code, mention) -> None:
    before = json.loads(ok(scheduled("rotation", "status", "--json")).out)
    assert_one_line_error(scheduled(*args), code, mentions=(mention,))
    assert json.loads(ok(scheduled("rotation", "status", "--json")).out) == before
    assert json.loads(ok(scheduled("incidents", "list", "--json")).out) == []


def test_a_scan_finding_a_valid_vault_value_recovers_it_at_once(scheduled, tmp_path) -> None:
    leak = tmp_path / "build.log"
    leak.write_text(f"deploy token={CANARY}\n")
    result = scheduled("scan", str(leak))
    assert result.returncode == 1
    assert "'ci-token' leaked: recovered (incident" in result.err
    assert CANARY not in result.out + result.err
    assert ok(scheduled("get", "ci-token")).out.startswith("ci_")  # rotated by its generate policy
    [incident] = json.loads(ok(scheduled("incidents", "list", "--json")).out)
    assert incident["source"] == "scan"
    again = scheduled("scan", str(leak))  # the old value is retired now: no second incident
    assert "recovered" not in again.err
    assert len(json.loads(ok(scheduled("incidents", "list", "--json")).out)) == 1
