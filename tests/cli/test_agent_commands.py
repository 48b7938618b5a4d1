"""Agent sessions, standing grants and the project file, through the real CLI.

No broker runs here: every command unlocks the vault itself (``AEGIS_VAULT_KEY``), which
is how an owner manages sessions and grants, and how an agent's ``list`` and ``get``
behave when no broker runs (the same visibility rules apply either way). Every test has
a private ``XDG_RUNTIME_DIR``, so no broker of another test can answer for this vault.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import NamedTuple

import pytest

from aegis_tui.core.sandbox.bwrap import find_bwrap
from tests.support.broker import aegis, isolate, wait_until

# ``session exec`` never hands the agent AEGIS_VAULT_KEY (see the test below); where these
# tests need the agent's commands to unlock the vault themselves, they pass the test key
# on explicitly. The session still binds them by their process ancestry.
KEYED = f"AEGIS_VAULT_KEY={'5f' * 32}"

SESSION_LINE = re.compile(r"^export AEGIS_SESSION=(ast_[A-Za-z0-9_-]{43})$")
TOKEN = re.compile(r"ast_[A-Za-z0-9_-]{43}")
DEV_VALUE = "dev-value-" + "3c9e1f" * 3
PROD_VALUE = "prod-value-" + "a17b44" * 3


def ok(result):  # type: ignore[no-untyped-def]
    assert result.returncode == 0, (result.returncode, result.err)
    return result


@pytest.fixture
def isolated(cli, request):  # type: ignore[no-untyped-def]
    """The ``cli`` fixture with a private runtime folder and this venv's scripts on PATH."""
    isolate(cli.env, request.addfinalizer)
    return cli


@pytest.fixture
def two_contexts(isolated, env_vault):  # type: ignore[no-untyped-def]
    """An env-key vault with two credentials in two contexts."""
    ok(env_vault("add", "gh", "--context", "acme/dev", "--service", "GitHub", "--tag", "ci", input=DEV_VALUE))
    ok(env_vault("add", "db", "--context", "acme/prod", "--service", "Postgres", input=PROD_VALUE))
    return env_vault


class Started(NamedTuple):
    token: str  # what the agent holds in AEGIS_SESSION: a secret
    id: str  # what lists, grants and the audit log show


def start_session(cli, context: str, ttl: str = "1h", label: str = "") -> Started:  # type: ignore[no-untyped-def]
    before = set(sessions(cli, "--all"))
    args = ["session", "start", "--context", context, "--ttl", ttl] + (["--label", label] if label else [])
    result = ok(cli(*args))
    lines = result.out.splitlines()
    assert len(lines) == 1, result.out
    found = SESSION_LINE.match(lines[0])
    assert found, lines[0]
    (public_id,) = set(sessions(cli, "--all")) - before
    return Started(found.group(1), public_id)


def names(result) -> set[str]:  # type: ignore[no-untyped-def]
    return {item["name"] for item in json.loads(ok(result).out)}


def sessions(cli, *args: str) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {item["id"]: item for item in json.loads(ok(cli("session", "list", "--json", *args)).out)}


def grants(cli, *args: str) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {item["id"]: item for item in json.loads(ok(cli("grants", "list", "--json", *args)).out)}


# -- sessions ------------------------------------------------------------------------------------
def test_session_start_prints_only_an_export_line_and_session_list_shows_the_session(two_contexts):
    started = start_session(two_contexts, "acme/dev", label="claude")
    session = started.id
    listed = sessions(two_contexts)
    assert set(listed) == {session}
    assert listed[session]["context"] == "acme/dev"
    assert listed[session]["label"] == "claude"
    assert listed[session]["state"] == "active"
    assert listed[session]["root_pid"] is None  # bound to AEGIS_SESSION, not to a process
    table = ok(two_contexts("session", "list")).out
    assert session in table and "acme/dev" in table and "claude" in table
    assert started.token not in table + json.dumps(listed)  # the agent's secret is never listed


def test_inside_a_session_list_shows_only_the_sessions_context(two_contexts):
    session = start_session(two_contexts, "acme/dev").token
    assert names(two_contexts("list", "--json")) == {"gh", "db"}
    assert names(two_contexts("list", "--json", env={"AEGIS_SESSION": session})) == {"gh"}
    correct = ok(two_contexts("get", "gh", env={"AEGIS_SESSION": session})).stdout == DEV_VALUE.encode()
    assert correct, "get inside the session did not print the credential's value"


def test_inside_a_session_a_credential_outside_its_context_looks_exactly_like_a_missing_one(two_contexts,
                                                                                           expect_error):
    session = start_session(two_contexts, "acme/dev").token
    inside = {"AEGIS_SESSION": session}
    outside = two_contexts("get", "db", env=inside)
    outside_line = expect_error(outside, 4)
    assert outside.stdout == b""
    by_reference = two_contexts("get", "aegis://acme/prod/db", env=inside)
    expect_error(by_reference, 4)
    # The same name once it really is missing: not one byte of the answer differs.
    ok(two_contexts("destroy", "db", "--yes"))
    missing = two_contexts("get", "db", env=inside)
    assert expect_error(missing, 4) == outside_line
    assert (missing.stdout, missing.stderr) == (outside.stdout, outside.stderr)


def test_an_expired_session_is_refused_with_a_message_naming_it(two_contexts, expect_error):
    token, session = start_session(two_contexts, "acme/dev", ttl="1s")
    inside = {"AEGIS_SESSION": token}
    refused = wait_until(lambda: (r := two_contexts("list", env=inside)).returncode != 0 and r,
                         "the one-second session to expire")
    line = expect_error(refused, 8, mentions=(session, "expired"))
    assert "start a new one" in line
    get = two_contexts("get", "gh", env=inside)
    expect_error(get, 8, mentions=(session, "expired"))
    assert get.stdout == b""
    assert sessions(two_contexts, "--all")[session]["state"] == "expired"
    assert session not in sessions(two_contexts)  # the default listing shows active ones only


def test_an_unknown_session_id_is_refused_and_never_falls_back_to_seeing_everything(two_contexts, expect_error):
    for declared in ("as_0123456789abcdef", "ast_" + "A" * 43):
        result = two_contexts("list", env={"AEGIS_SESSION": declared})
        expect_error(result, 4, mentions=("AEGIS_SESSION",))
        assert result.stdout == b""


def test_session_end_revokes_the_sessions_grants_and_leaves_standing_grants_alone(two_contexts):
    session = start_session(two_contexts, "acme/dev").id
    for_session = ok(two_contexts("grants", "add", "gh", "--session", session)).out.strip()
    standing = ok(two_contexts("grants", "add", "gh")).out.strip()
    assert set(grants(two_contexts)) == {for_session, standing}
    end = ok(two_contexts("session", "end", session))
    assert "1 grant(s) revoked" in end.err
    everything = grants(two_contexts, "--all")
    assert everything[for_session]["state"] == "revoked"
    assert everything[for_session]["revoked_reason"] == "session ended"
    assert everything[standing]["state"] == "active"
    assert set(grants(two_contexts)) == {standing}
    assert sessions(two_contexts, "--all")[session]["state"] == "ended"
    table = ok(two_contexts("grants", "list", "--all")).out
    assert re.search(rf"^{for_session}\s.*\brevoked$", table, re.M), table


def test_session_end_defaults_to_the_session_named_in_the_environment(two_contexts):
    token, session = start_session(two_contexts, "acme/dev")
    ok(two_contexts("session", "end", env={"AEGIS_SESSION": token}))
    assert sessions(two_contexts, "--all")[session]["state"] == "ended"


def test_session_exec_runs_the_command_in_a_session_bound_to_its_process_and_ends_it(two_contexts):
    """Uncontained (``--no-sandbox``): the agent holds its session's token."""
    result = ok(two_contexts("session", "exec", "--no-sandbox", "--context", "acme/dev", "--", "sh", "-c",
                             f'echo "$AEGIS_SESSION"; {KEYED} aegis-vault list --json'))
    first, rest = result.out.split("\n", 1)
    assert TOKEN.fullmatch(first), first
    assert {item["name"] for item in json.loads(rest)} == {"gh"}
    (after,) = sessions(two_contexts, "--all").values()
    assert after["state"] == "ended"
    assert after["root_pid"] is not None and after["label"] == "sh"
    assert not sessions(two_contexts)  # nothing left active


def test_unsetting_aegis_session_inside_session_exec_does_not_escape_the_context(two_contexts):
    result = ok(two_contexts("session", "exec", "--context", "acme/dev", "--", "sh", "-c",
                             f"unset AEGIS_SESSION; {KEYED} aegis-vault list --json; {KEYED} aegis-vault get db; "
                             "echo \"get=$?\""))
    listing, _, tail = result.out.partition("\n")
    assert {item["name"] for item in json.loads(listing)} == {"gh"}
    assert tail.strip() == "get=4"
    leaked = PROD_VALUE in result.out or PROD_VALUE in result.err
    assert not leaked, "a value outside the session's context was printed"


@pytest.mark.skipif(find_bwrap() is None, reason="needs a working bubblewrap")
def test_a_sandboxed_session_exec_hosts_a_broker_and_the_agent_reaches_it_without_any_aegis_variable(two_contexts):
    """No broker runs: session exec unlocks the vault and serves it for the session; the
    agent, with no token and no key, lists its context through its session's socket."""
    result = ok(two_contexts("session", "exec", "--context", "acme/dev", "--", "sh", "-c",
                             'env | grep -c "^AEGIS_"; aegis-vault list --json'))
    first, rest = result.out.split("\n", 1)
    assert first == "0"
    assert {item["name"] for item in json.loads(rest)} == {"gh"}
    (after,) = sessions(two_contexts, "--all").values()
    assert after["state"] == "ended" and after["sandboxed"] is True
    assert "sandboxed" in result.err


def test_session_exec_does_not_hand_the_vault_key_to_the_agent(two_contexts):
    result = ok(two_contexts("session", "exec", "--no-sandbox", "--context", "acme/dev", "--", "sh", "-c",
                             'echo "key=${AEGIS_VAULT_KEY:-none}"; aegis-vault get db --version 1; echo "rc=$?"'))
    leaked = PROD_VALUE in result.out
    assert not leaked, "the agent read a value outside its context"
    assert result.out.splitlines() == ["key=none", "rc=3"]  # it cannot even unlock


def test_inside_a_session_an_old_version_outside_the_context_is_not_found_either(two_contexts, expect_error):
    session = start_session(two_contexts, "acme/dev").token
    result = two_contexts("get", "db", "--version", "1", env={"AEGIS_SESSION": session})
    leaked = PROD_VALUE in result.out
    assert not leaked, "get --version printed a value outside the session's context"
    expect_error(result, 4)


def test_inside_a_session_show_of_a_credential_outside_the_context_is_not_found(two_contexts, expect_error):
    session = start_session(two_contexts, "acme/dev").token
    result = two_contexts("show", "db", "--json", env={"AEGIS_SESSION": session})
    expect_error(result, 4)


def test_session_exec_passes_the_exit_code_through_and_still_ends_the_session(two_contexts):
    result = two_contexts("session", "exec", "--context", "acme/dev", "--", "sh", "-c", "exit 7")
    assert result.returncode == 7, result.err
    ended = [s for s in sessions(two_contexts, "--all").values() if s["label"] == "sh"]
    assert len(ended) == 1 and ended[0]["state"] == "ended"


def test_session_exec_revokes_the_grants_made_for_it_when_the_command_exits(two_contexts):
    # The command grants itself nothing (it cannot: no broker, and the key is the owner's);
    # the owner's grant for the session, made while it runs, ends with it. Uncontained: in
    # a sandbox the vault is hidden, so not even the owner could unlock it from in there.
    script = (f'{KEYED} aegis-vault grants add gh --session '
              f'"$({KEYED} aegis-vault session list --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\'id\'])")"')
    ok(two_contexts("session", "exec", "--no-sandbox", "--context", "acme/dev", "--", "sh", "-c", script))
    everything = list(grants(two_contexts, "--all").values())
    assert len(everything) == 1
    assert everything[0]["state"] == "revoked"


def test_session_start_refuses_a_bad_ttl_and_a_bad_context_and_starts_nothing(two_contexts, expect_error):
    for args in (("--ttl", "0s"), ("--ttl", "soon"), ("--ttl", "400d")):
        expect_error(two_contexts("session", "start", "--context", "acme/dev", *args), 2)
    expect_error(two_contexts("session", "start", "--context", "Bad Context!", "--ttl", "1h"), 2)
    assert sessions(two_contexts, "--all") == {}


# -- grants -------------------------------------------------------------------------------------
def test_grants_add_list_revoke_round_trip(two_contexts):
    added = ok(two_contexts("grants", "add", "gh", "--scope", "repo:push", "--scope", "repo:read", "--uses", "3",
                            "--ttl", "1h", "--reason", "ci deploys"))
    grant_id = added.out.strip()
    assert re.fullmatch(r"gr_[0-9a-f]{16}", grant_id), added.out
    assert "granted gh" in added.err
    listed = grants(two_contexts)
    assert set(listed) == {grant_id}
    grant = listed[grant_id]
    assert (grant["label"], grant["context"], grant["session_id"]) == ("gh", "acme/dev", None)
    assert grant["scopes"] == ["repo:push", "repo:read"]
    assert grant["uses_left"] == 3 and grant["expires_at"] is not None
    assert grant["reason"] == "ci deploys" and grant["state"] == "active"
    table = ok(two_contexts("grants", "list")).out
    assert grant_id in table and "repo:push,repo:read" in table and "standing" in table

    selector = ok(two_contexts("grants", "add", "--service", "GitHub", "--uses", "unlimited")).out.strip()
    by_tag = ok(two_contexts("grants", "add", "--tag", "ci", "--context", "acme")).out.strip()
    listed = grants(two_contexts)
    assert listed[selector]["label"] == "service:GitHub" and listed[selector]["uses_left"] is None
    assert listed[by_tag]["label"] == "tag:ci" and listed[by_tag]["context"] == "acme"

    revoked = ok(two_contexts("grants", "revoke", grant_id, "--reason", "done"))
    assert grant_id in revoked.err
    assert set(grants(two_contexts)) == {selector, by_tag}
    everything = grants(two_contexts, "--all")
    assert everything[grant_id]["state"] == "revoked" and everything[grant_id]["revoked_reason"] == "done"
    operations = [entry["operation"] for entry in _audit(two_contexts)]
    assert operations.count("grant.create") == 3 and operations.count("grant.revoke") == 1


def _audit(cli) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(line) for line in ok(cli("audit", "export", "--jsonl")).out.splitlines() if line]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("grants", "revoke", "gr_0123456789abcdef"), 4),  # well formed, unknown
        (("grants", "revoke", "not-a-grant-id"), 2),
        (("grants", "add", "gh", "--service", "GitHub"), 2),  # a NAME and a selector
        (("grants", "add", "--service", "GitHub", "--tag", "ci", "gh"), 2),
        (("grants", "add"), 2),  # neither
        (("grants", "add", "gh", "--uses", "0"), 2),
        (("grants", "add", "gh", "--uses", "-1"), 2),
        (("grants", "add", "gh", "--uses", "many"), 2),
        (("grants", "add", "gh", "--scope", "bad scope!"), 2),
        (("grants", "add", "gh", "--scope", "x" * 65), 2),
        (("grants", "add", "gh", "--ttl", "0s"), 2),
        (("grants", "add", "gh", "--ttl", "whenever"), 2),
        (("grants", "add", "nosuch"), 4),
        (("grants", "add", "gh", "--context", "Not A Context!"), 2),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else str(value),
)
def test_grants_bad_input_is_one_line_on_stderr_a_non_zero_exit_and_changes_nothing(two_contexts, expect_error,
                                                                                  args, code):
    existing = ok(two_contexts("grants", "add", "gh", "--uses", "2")).out.strip()
    before = grants(two_contexts, "--all")
    result = two_contexts(*args)
    expect_error(result, code)
    assert result.stdout == b""
    assert grants(two_contexts, "--all") == before
    assert before[existing]["state"] == "active"


def test_a_grant_with_a_zero_ttl_is_refused_rather_than_made_a_grant_that_never_expires(two_contexts,
                                                                                        expect_error):
    for ttl in ("0", "0s", "0d"):
        expect_error(two_contexts("grants", "add", "gh", "--ttl", ttl), 2, mentions=("duration",))
    assert grants(two_contexts, "--all") == {}


def test_revoking_a_grant_twice_keeps_the_first_revocation(two_contexts):
    grant_id = ok(two_contexts("grants", "add", "gh")).out.strip()
    ok(two_contexts("grants", "revoke", grant_id, "--reason", "first"))
    first = grants(two_contexts, "--all")[grant_id]
    ok(two_contexts("grants", "revoke", grant_id, "--reason", "second"))
    assert grants(two_contexts, "--all")[grant_id] == first


def test_grants_add_needs_the_vault_key_even_inside_a_session(two_contexts, expect_error):
    session = start_session(two_contexts, "acme/dev").token
    result = two_contexts("grants", "add", "gh", env={"AEGIS_VAULT_KEY": None, "AEGIS_SESSION": session})
    expect_error(result, 3)
    assert grants(two_contexts, "--all") == {}


def test_inside_a_session_grants_list_shows_only_that_sessions_grants(two_contexts):
    token, session = start_session(two_contexts, "acme/dev")
    other = start_session(two_contexts, "acme/dev").id
    mine = ok(two_contexts("grants", "add", "gh", "--session", session)).out.strip()
    ok(two_contexts("grants", "add", "gh", "--session", other))
    ok(two_contexts("grants", "add", "gh"))
    inside = json.loads(ok(two_contexts("grants", "list", "--json", env={"AEGIS_SESSION": token})).out)
    assert [g["id"] for g in inside] == [mine]
    assert set(sessions(two_contexts)) == {session, other}
    seen = json.loads(ok(two_contexts("session", "list", "--json", env={"AEGIS_SESSION": token})).out)
    assert [s["id"] for s in seen] == [session]


# -- project init ---------------------------------------------------------------------------------
def test_project_init_writes_a_valid_aegis_toml_that_tomllib_reads_back(isolated, tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    result = aegis(isolated.env, "project", "init", "--context", "acme/dev", "--env", "GITHUB_TOKEN=gh",
                   "--env", "DATABASE_URL=aegis://acme/prod/db", cwd=project)
    assert result.returncode == 0, result.err
    assert result.stdout == b""
    assert ".aegis.toml" in result.err
    data = tomllib.loads((project / ".aegis.toml").read_text(encoding="utf-8"))
    assert data == {"context": "acme/dev", "env": {"GITHUB_TOKEN": "gh", "DATABASE_URL": "aegis://acme/prod/db"}}


def test_project_init_refuses_to_overwrite_without_force_and_replaces_with_it(isolated, tmp_path: Path, expect_error):
    project = tmp_path / "project"
    project.mkdir()
    assert aegis(isolated.env, "project", "init", "--context", "acme/dev", "--env", "A=a", cwd=project).returncode == 0
    first = (project / ".aegis.toml").read_bytes()
    refused = aegis(isolated.env, "project", "init", "--context", "acme/prod", "--env", "B=b", cwd=project)
    expect_error(refused, 2, mentions=("--force",))
    assert (project / ".aegis.toml").read_bytes() == first
    forced = aegis(isolated.env, "project", "init", "--context", "acme/prod", "--env", "B=b", "--force", cwd=project)
    assert forced.returncode == 0, forced.err
    assert tomllib.loads((project / ".aegis.toml").read_text()) == {"context": "acme/prod", "env": {"B": "b"}}


@pytest.mark.parametrize("bad", [("--env", "NOEQUALS"), ("--env", "1BAD=x"), ("--env", "A="),
                                 ("--context", "Not A Context!")])
def test_project_init_refuses_bad_input_and_writes_nothing(isolated, tmp_path: Path, expect_error, bad):
    project = tmp_path / "project"
    project.mkdir()
    expect_error(aegis(isolated.env, "project", "init", *bad, cwd=project), 2)
    assert not (project / ".aegis.toml").exists()
