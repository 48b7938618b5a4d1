"""``aegis-vault review`` end to end: the table, apply, list, export and verify."""

from __future__ import annotations

import json
import stat

import pytest

CANARY = "canary-review-cli-5e4d3c2b1a"


def ok(result):  # type: ignore[no-untyped-def]
    assert result.returncode == 0, (result.returncode, result.err)
    return result


@pytest.fixture
def stocked(env_vault):  # type: ignore[no-untyped-def]
    """Two credentials: one in a context and read once, one orphan never read."""
    ok(env_vault("add", "gh", "--service", "github", "--context", "acme", input=CANARY))
    ok(env_vault("add", "orphan key", input=CANARY + "-2"))
    ok(env_vault("get", "gh"))
    return env_vault


def _apply(cli, tmp_path, decisions: dict) -> str:  # type: ignore[no-untyped-def]
    path = tmp_path / "decisions.json"
    path.write_text(json.dumps(decisions))
    return ok(cli("review", "apply", str(path))).out.strip()


def test_review_prints_every_credential_with_its_flags(stocked) -> None:  # type: ignore[no-untyped-def]
    out = ok(stocked("review")).out
    assert out.splitlines()[0].split()[:3] == ["NAME", "CONTEXT", "STATUS"]
    orphan = next(line for line in out.splitlines() if line.startswith("orphan key"))
    assert "no-owner-context" in orphan
    rows = json.loads(ok(stocked("review", "--json")).out)
    assert {row["name"]: row["uses"] for row in rows} == {"gh": 1, "orphan key": 0}
    flagged = json.loads(ok(stocked("review", "--json", "--flagged")).out)
    assert [row["name"] for row in flagged] == ["orphan key"]


def test_apply_decides_every_row_and_stores_a_listed_review(stocked, tmp_path) -> None:  # type: ignore[no-untyped-def]
    review_id = _apply(stocked, tmp_path, {"gh": "rotate", "orphan key": {"action": "revoke", "note": "nobody"}})
    assert review_id.startswith("rv_")
    listed = ok(stocked("review", "list")).out
    assert review_id in listed
    shown = json.loads(ok(stocked("list", "--json")).out)
    assert {c["name"]: c["status"] for c in shown}["orphan key"] == "revoked"
    exported = json.loads(ok(stocked("review", "export", "--format", "json")).out)
    outcome = {d["name"]: d["outcome"] for d in exported["decisions"]}
    assert outcome["gh"] == "rotation needs a human: run aegis-vault rotate gh"


def test_apply_refuses_a_file_that_leaves_a_credential_undecided(stocked, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"gh": "keep"}))
    result = stocked("review", "apply", str(path))
    assert result.returncode == 2 and "1 credential(s) still have no decision" in result.err
    assert ok(stocked("review", "list")).out.strip().splitlines()[1:] == []


def test_apply_refuses_an_unknown_action_in_one_line(stocked, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"gh": "delete", "orphan key": "keep"}))
    result = stocked("review", "apply", str(path))
    assert result.returncode == 2 and len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize("fmt", ["md", "json"])
def test_export_writes_a_private_file_that_verifies(stocked, tmp_path, fmt) -> None:  # type: ignore[no-untyped-def]
    review_id = _apply(stocked, tmp_path, {"gh": "keep", "orphan key": "keep"})
    target = tmp_path / f"review.{fmt}"
    ok(stocked("review", "export", review_id[:8], "--format", fmt, "--output", str(target)))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert CANARY not in target.read_text()
    verified = ok(stocked("review", "verify", str(target)))
    assert verified.out.startswith(f"signature good: review {review_id} by ")
    assert "2 decisions; signed with this vault's audit key" in verified.out
    without_key = ok(stocked("review", "verify", str(target), env={"AEGIS_VAULT_KEY": None}))
    assert "checked with the key the report carries" in without_key.out


def test_verify_rejects_a_tampered_report_in_one_line(stocked, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _apply(stocked, tmp_path, {"gh": "keep", "orphan key": "keep"})
    target = tmp_path / "review.json"
    ok(stocked("review", "export", "--format", "json", "--output", str(target)))
    data = json.loads(target.read_text())
    data["decisions"][0]["action"] = "revoke"
    target.write_text(json.dumps(data))
    result = stocked("review", "verify", str(target))
    assert result.returncode == 6 and result.out == ""
    assert result.err.strip().count("\n") == 0 and "signature does not match" in result.err


def test_no_audit_entry_names_a_value_after_a_review(stocked, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _apply(stocked, tmp_path, {"gh": "keep", "orphan key": "revoke"})
    exported = ok(stocked("audit", "export", "--jsonl")).out
    assert "review.decision" in exported and CANARY not in exported
