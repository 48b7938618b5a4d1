"""Agent sessions and grants, attacked from the agent's side.

A real headless broker serves a vault only the owner can unlock; every agent command is
the real CLI without the key. Each test is one attack from issue 11: a stolen session
token used from outside the process tree its session is bound to (and where a token
could be stolen from: listings, the vault file, the audit log), a session bound to
pid 1, a nested session outliving its parent, and a raw value read after the owner
granted the session only the right to have it injected into commands.

``session start`` prints ``export AEGIS_SESSION=<token>``; the owner finds a session's
public id (what grants name) by its label in ``session list --json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tests.support.attacker import (
    DEV_DB,
    GIT_URL,
    PROD_DB,
    BoundSession,
    RawClient,
    fake_token_like,
    git_credential_fill,
    leaked,
    ok,
    session_by_label,
    session_token,
    sessions_as_owner,
    start_session,
    vault_file_bytes,
)
from tests.support.broker import audit_entries, without_key

UNKNOWN_SESSION = "no such agent session, or not yours"


def names(outcome) -> set[str]:  # type: ignore[no-untyped-def]
    return {item["name"] for item in json.loads(ok(outcome).out)}


def test_a_stolen_session_token_used_outside_its_bound_tree_is_refused_like_an_unknown_one_and_audited_high(
        owner, broker, agent, tmp_path: Path):
    inside = tmp_path / "inside.json"
    marker = tmp_path / "stolen-run-started"
    with BoundSession(owner.env, "acme/dev", label="victim",
                      script=f"aegis-vault list --json > {inside}") as victim:
        public = session_by_label(owner.env, "victim")["id"]
        ok(owner("grants", "add", "dev-db", "--session", public))
        # The session works for its own tree: the refusal below is about who asks.
        assert {item["name"] for item in json.loads(inside.read_text())} == {"dev-db", "dev-other"}

        stolen = {"AEGIS_SESSION": victim.token}
        listed = agent("list", "--json", env=stolen)
        ran = agent("run", "--need", "dev-db=X", "--", "sh", "-c", f'touch "{marker}"', env=stolen)
        unknown = agent("list", "--json", env={"AEGIS_SESSION": fake_token_like(victim.token)})

    acted = listed.returncode == 0 or listed.stdout != b""
    assert not acted, "a process outside the bound tree acted in the session with its stolen token"
    ran_code, started = ran.returncode, marker.exists()
    assert ran_code != 0 and not started, "a stolen token ran a command with the session's grant"
    assert not leaked(ran)
    # No hint whether the session exists: the same exit code and the same words as for
    # a token that names nothing.
    assert UNKNOWN_SESSION in listed.err
    assert (listed.returncode, listed.err) == (unknown.returncode, unknown.err)
    assert victim.token not in listed.err
    entries = audit_entries(owner.env)
    refused = [e for e in entries if e["operation"] == "session.refused"]
    assert refused and all(e["risk_level"] == "high" for e in refused)
    assert victim.token not in json.dumps(entries), "the audit log holds a session token"


def test_session_tokens_never_show_in_another_sessions_listing_nor_in_clear_in_the_vault_file(
        owner, broker, agent, home: Path):
    with BoundSession(owner.env, "acme/dev", label="victim") as victim:
        public = session_by_label(owner.env, "victim")["id"]
        other = start_session(owner.env, "acme/dev", label="other-agent")
        seen = agent("session", "list", "--all", "--json", env={"AEGIS_SESSION": other})
        grants_seen = agent("grants", "list", "--all", "--json", env={"AEGIS_SESSION": other})
        on_disk = vault_file_bytes(home)
        tokens_on_disk = [label for label, token in (("victim", victim.token), ("other", other))
                          if token.encode() in on_disk]
        assert not tokens_on_disk, f"session tokens in clear in vault.db: {tokens_on_disk}"
        for outcome in (seen, grants_seen):
            assert victim.token not in outcome.out + outcome.err
            assert public not in outcome.out + outcome.err
        owner_view = json.dumps(sessions_as_owner(owner.env))
        assert victim.token not in owner_view and other not in owner_view, "a listing shows a session token"
    assert victim.token not in json.dumps(audit_entries(owner.env)), "the audit log holds a session token"


def test_binding_a_session_to_pid_1_is_refused_and_the_owners_own_shell_keeps_working(
        owner, broker, agent, tmp_path: Path):
    ok(owner("grants", "add", "prod-db"))  # a standing grant the owner's shell relies on
    with RawClient(broker.socket_path) as raw:
        to_init = raw.call("session.start", {"context": "acme/dev", "ttl": 3600, "label": "pid-1", "bind_pid": 1})
        to_parent = raw.call("session.start", {"context": "acme/dev", "ttl": 3600, "label": "parent",
                                               "bind_pid": os.getppid()})
    assert to_init is not None and to_init["ok"] is False, "a session was bound to pid 1"
    assert to_parent is not None and to_parent["ok"] is False, "a session was bound to the caller's parent"
    assert not [s for s in sessions_as_owner(owner.env) if s["label"] in ("pid-1", "parent")]
    # The human's shell (no session, no key) still sees every context and uses its grant.
    assert names(agent("list", "--json")) == {"dev-db", "dev-other", "prod-db", "pin"}
    proof = tmp_path / "proof"
    ran = agent("run", "--need", "prod-db=X", "--", "sh", "-c", f'printf %s "$X" | sha256sum > "{proof}"')
    ok(ran)
    assert proof.read_text().split()[0] == hashlib.sha256(PROD_DB.encode()).hexdigest()


def test_a_nested_session_cannot_outlive_or_widen_its_parent_and_ends_with_it(owner, broker, agent):
    parent = start_session(owner.env, "acme/dev", ttl="1h", label="parent")
    inside = {"AEGIS_SESSION": parent}
    wider = agent("session", "start", "--context", "acme", "--ttl", "1h", "--label", "wider", env=inside)
    assert wider.returncode != 0, "a nested session widened its parent's context"
    # Asking for longer than the parent has left is refused, or cut to the parent's end.
    longer = agent("session", "start", "--context", "acme/dev", "--ttl", "10h", "--label", "longer", env=inside)
    child = session_token(agent("session", "start", "--context", "acme/dev", "--ttl", "30m", "--label", "child",
                                env=inside))
    listed = {s["label"]: s for s in sessions_as_owner(owner.env)}
    assert "wider" not in listed
    if longer.returncode == 0:
        assert listed["longer"]["expires_at"] <= listed["parent"]["expires_at"], \
            "a session started inside a session expires after its parent"
    ok(owner("session", "end", listed["parent"]["id"]))
    after = {s["label"]: s["state"] for s in sessions_as_owner(owner.env)}
    assert after["parent"] == "ended"
    assert after["child"] == "ended", "the nested session outlived its parent"
    orphan = agent("list", "--json", env={"AEGIS_SESSION": child})
    code, printed = orphan.returncode, orphan.stdout
    assert code != 0 and printed == b"", "the nested session still acts after its parent ended"


def test_an_inject_only_session_grant_gives_no_raw_value_to_get_or_git_credential_fill_but_run_injects_it(
        owner, broker, agent, tmp_path: Path):
    token = start_session(owner.env, "acme/dev", label="inject-only")
    public = session_by_label(owner.env, "inject-only")["id"]
    ok(owner("grants", "add", "dev-db", "--session", public))  # the default: inject only
    inside = {"AEGIS_SESSION": token}
    problems: list[str] = []

    got = agent("get", "dev-db", env=inside)
    if got.returncode == 0 or leaked(got):
        problems.append(f"get printed the raw value (exit {got.returncode})")

    git_home = tmp_path / "git-home"
    git_home.mkdir()
    git_env = {**without_key(owner.env), **inside, "HOME": str(git_home), "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
    request = f"url={GIT_URL}.git\n\n".encode()
    fill = git_credential_fill(git_env, request)
    if DEV_DB.encode() in fill.stdout + fill.stderr:
        problems.append(f"git credential fill printed the raw value (exit {fill.returncode})")

    proof = tmp_path / "proof"
    ran = agent("run", "--need", "dev-db=X", "--", "sh", "-c",
                f'printf %s "$X" | sha256sum > "{proof}"; echo "child saw $X"', env=inside)
    if ran.returncode != 0 or not proof.exists():
        problems.append(f"run did not inject the granted value (exit {ran.returncode}: {ran.err.strip()})")
    elif proof.read_text().split()[0] != hashlib.sha256(DEV_DB.encode()).hexdigest():
        problems.append("run injected something other than the value")
    elif leaked(ran) or "child saw [aegis:dev-db]" not in ran.out:
        problems.append("run's output was not masked")
    assert not problems, "\n".join(problems)
