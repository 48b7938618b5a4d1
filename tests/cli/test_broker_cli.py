"""The command line through a real ``aegis-vault serve`` broker.

Each test starts its own headless broker (a subprocess, with a private
``XDG_RUNTIME_DIR``) on a vault that only ``AEGIS_VAULT_KEY`` unlocks. The agent's
commands then run WITHOUT that key: whatever they get, they got through the broker.
The owner's commands (``add``, ``grants add``, ``revoke``, ``audit export``) keep it.
A headless broker has nobody to approve a request, so one without a grant is denied
once the approval timeout (2 s here) has passed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import Broker, audit_entries, isolate, socket_answers, wait_until, without_key

VALUE = "ghp_broker" + "7d1e0c" * 4
OTHER = "other-" + "55aa19" * 4
NO_ANSWER = "no one approved access to"


def ok(result):  # type: ignore[no-untyped-def]
    assert result.returncode == 0, (result.returncode, result.err)
    return result


@pytest.fixture
def owner(cli, request):  # type: ignore[no-untyped-def]
    """The vault's owner: holds the key; a private runtime folder; two credentials."""
    isolate(cli.env, request.addfinalizer)
    cli.env["AEGIS_VAULT_KEY"] = "5f" * 32
    ok(cli("init", "--no-passphrase"))
    ok(cli("add", "gh", "--context", "acme/dev", "--service", "GitHub", input=VALUE))
    ok(cli("add", "other", "--context", "acme/dev", input=OTHER))
    return cli


@pytest.fixture
def broker(owner, tmp_path: Path) -> Iterator[Broker]:
    with Broker(owner.env, tmp_path / "serve.log") as running:
        yield running


@pytest.fixture
def agent(owner, broker):  # type: ignore[no-untyped-def]
    """Runs ``aegis-vault`` the way an agent would: no key, so only through the broker."""

    def run(*args: str, env: dict[str, str] | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
        return owner(*args, env={**(env or {}), "AEGIS_VAULT_KEY": None}, **kwargs)

    return run


def assert_prints_value(result) -> None:  # type: ignore[no-untyped-def]
    """``get`` succeeded and printed exactly VALUE (compared, never shown on failure)."""
    assert result.returncode == 0, (result.returncode, result.err)
    correct = result.stdout == VALUE.encode()
    assert correct, f"stdout is not the credential's value ({len(result.stdout)} bytes)"


def grant(owner, *args: str) -> str:  # type: ignore[no-untyped-def]
    """A standing grant that lets its holder read the value (these tests ``get`` it)."""
    return ok(owner("grants", "add", "--reveal", *args)).out.strip()


def reads(owner, name: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return [e for e in audit_entries(owner.env) if e["operation"] == "read" and e["target"] == name]


def test_status_reports_the_broker_running_headless(agent):
    status = json.loads(ok(agent("status", "--json")).out)
    assert status["broker"] == "running (headless)"
    assert status["unlocked"] is False  # the agent's own process did not unlock anything


def test_get_with_a_standing_grant_returns_the_value_and_audits_a_read_under_that_grant(owner, agent):
    grant_id = grant(owner, "gh")
    result = agent("get", "gh")
    assert_prints_value(result)
    assert result.stderr == b""
    found = reads(owner, "gh")
    assert len(found) == 1
    assert found[0]["detail"]["grant"] == grant_id
    assert found[0]["outcome"] == "ok"
    # The full reference works the same way, through the parser (not the fast path).
    assert_prints_value(agent("get", "aegis://acme/dev/gh", "--reason", "deploy"))


def test_list_through_the_broker_shows_summaries_and_no_values(agent):
    result = ok(agent("list", "--json"))
    assert {item["name"] for item in json.loads(result.out)} == {"gh", "other"}
    leaked = VALUE in result.out or OTHER in result.out
    assert not leaked, "list printed a value"


def test_get_without_a_grant_on_a_headless_broker_is_denied_with_exit_9_telling_the_agent_to_ask(
        owner, agent, expect_error):
    grant(owner, "gh")  # a grant for another credential does not cover this one
    result = agent("get", "other")
    line = expect_error(result, 9, mentions=(NO_ANSWER, "'other'", "ask the human"))
    assert "2 s" in line
    assert result.stdout == b""
    operations = [(e["operation"], e["target"]) for e in audit_entries(owner.env)]
    assert ("access.request", "other") in operations and ("access.timeout", "other") in operations
    assert not reads(owner, "other")


def test_a_grant_for_one_use_serves_once_then_the_next_get_waits_and_is_denied(owner, agent, expect_error):
    grant_id = grant(owner, "gh", "--uses", "1")
    assert_prints_value(agent("get", "gh"))
    second = agent("get", "gh")
    expect_error(second, 9, mentions=(NO_ANSWER,))
    assert second.stdout == b""
    state = {g["id"]: g for g in json.loads(ok(owner("grants", "list", "--all", "--json")).out)}[grant_id]
    assert (state["uses_left"], state["state"]) == (0, "used")
    assert len(reads(owner, "gh")) == 1


def test_the_owners_revoke_takes_effect_in_the_running_broker_at_once(owner, agent, expect_error):
    grant_id = grant(owner, "gh")
    assert_prints_value(agent("get", "gh"))
    listed = json.loads(ok(owner("grants", "list", "--json")).out)
    assert [g["id"] for g in listed] == [grant_id]
    revoked = ok(owner("grants", "revoke", grant_id, "--reason", "rotated away"))
    assert grant_id in revoked.err
    expect_error(agent("get", "gh"), 9, mentions=(NO_ANSWER,))
    revoke_entries = [e for e in audit_entries(owner.env) if e["operation"] == "grant.revoke"]
    assert len(revoke_entries) == 1 and revoke_entries[0]["detail"]["grant"] == grant_id


def test_a_keyless_process_outside_a_session_cannot_list_revoke_or_add_grants(agent, owner, expect_error):
    grant_id = grant(owner, "gh")
    for args in (("list",), ("revoke", grant_id)):
        expect_error(agent("grants", *args), 3, mentions=("cannot unlock",))
    assert json.loads(ok(owner("grants", "list", "--json")).out)[0]["state"] == "active"
    ok(owner("grants", "revoke", grant_id))
    expect_error(agent("grants", "add", "gh"), 3)
    assert [g["id"] for g in json.loads(ok(owner("grants", "list", "--all", "--json")).out)] == [grant_id]


def test_a_revoked_credential_is_refused_with_exit_8_even_under_a_grant(owner, agent, expect_error):
    grant(owner, "gh")
    ok(owner("revoke", "gh", "--reason", "leaked"))
    result = agent("get", "gh")
    expect_error(result, 8, mentions=("'gh'", "revoked"))
    assert result.stdout == b""
    refusals = [e for e in audit_entries(owner.env) if e["operation"] == "access.refused"]
    assert len(refusals) == 1 and refusals[0]["target"] == "gh"


def test_an_expired_credential_is_refused_with_exit_8_even_under_a_grant(owner, agent, expect_error):
    added = owner("add", "old", "--context", "acme/dev", "--expires", "2020-01-01", input="old-" + "9f" * 10)
    if added.returncode != 0:
        pytest.skip("add refuses expiry dates in the past")
    grant(owner, "old")
    result = agent("get", "old")
    expect_error(result, 8, mentions=("'old'", "expired", "2020-01-01"))
    assert result.stdout == b""


def test_a_second_serve_on_the_same_vault_fails_clearly_while_the_first_keeps_serving(owner, broker, agent,
                                                                                       tmp_path: Path,
                                                                                       expect_error):
    grant(owner, "gh")
    second = owner("serve", "--approval-timeout", "2s", timeout=120)
    expect_error(second, 7, mentions=("a broker already serves this vault",))
    assert broker.proc is not None and broker.proc.poll() is None
    assert_prints_value(agent("get", "gh"))


def test_serve_exits_cleanly_on_sigterm_and_removes_its_socket(owner, broker, agent, expect_error):
    path = broker.socket_path
    assert socket_answers(path)
    assert broker.terminate() == 0
    assert not os.path.exists(path)
    assert "broker stopped" in broker.log_text()
    assert "Traceback" not in broker.log_text()
    status = json.loads(ok(owner("status", "--json")).out)
    assert status["broker"] == "not running"
    # With the broker gone, the agent (no key) cannot get anything at all.
    expect_error(agent("get", "gh"), 3)


def test_serve_stopping_on_sigterm_denies_a_request_waiting_for_approval(
        owner, tmp_path: Path):
    slow = Broker(owner.env, tmp_path / "slow.log", approval_timeout="10m")
    try:
        slow.start()
        waiting = subprocess.Popen([sys.executable, "-m", "aegis_tui", "get", "gh"], env=without_key(owner.env),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   start_new_session=True)
        try:
            wait_until(lambda: any(e["operation"] == "access.request" for e in audit_entries(owner.env)),
                       "the request to reach the broker")
            assert slow.terminate() == 0
            out, err = waiting.communicate(timeout=60)
        finally:
            if waiting.poll() is None:
                waiting.kill()
                waiting.wait(timeout=30)
        assert waiting.returncode == 9, err  # told "denied", not left with a connection that vanished
        assert out == b""
        assert b"Traceback" not in err and len(err.splitlines()) == 1
    finally:
        slow.stop()


def test_malformed_json_on_the_socket_gets_an_error_line_and_the_broker_keeps_serving(owner, broker, agent):
    grant(owner, "gh")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(60)
        raw.connect(broker.socket_path)
        replies = raw.makefile("rb")
        for garbage in (b"{not json\n", b"[1, 2]\n", b'{"v": 1, "id": 5, "op": "no.such.op"}\n', b"\xff\xfe\n"):
            raw.sendall(garbage)
            reply = json.loads(replies.readline())
            assert reply["ok"] is False
            assert reply["error"]["code"] == "protocol" and reply["error"]["exit"] == 2
        raw.sendall(b'{"v": 1, "id": 9, "op": "hello", "args": {}}\n')  # the same connection still works
        hello = json.loads(replies.readline())
        assert hello["ok"] is True and hello["id"] == 9 and hello["result"]["mode"] == "headless"
    assert_prints_value(agent("get", "gh"))
    assert broker.proc is not None and broker.proc.poll() is None


def test_a_frame_larger_than_the_limit_gets_an_error_and_the_broker_keeps_serving(owner, broker, agent):
    grant(owner, "gh")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(60)
        raw.connect(broker.socket_path)
        try:
            raw.sendall(b"x" * (256 * 1024) + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the broker may hang up before reading it all
        reply = raw.makefile("rb").readline()
    if reply:
        assert json.loads(reply)["error"]["code"] == "protocol"
    assert_prints_value(agent("get", "gh"))


def test_a_session_started_through_the_broker_confines_the_agent(owner, agent, expect_error):
    ok(owner("add", "prod-db", "--context", "acme/prod", input="prod-" + "e3" * 10))
    grant(owner, "prod-db")
    started = ok(agent("session", "start", "--context", "acme/dev", "--ttl", "1h"))
    session = started.out.strip().removeprefix("export AEGIS_SESSION=")
    inside = {"AEGIS_SESSION": session}
    assert {c["name"] for c in json.loads(ok(agent("list", "--json", env=inside)).out)} == {"gh", "other"}
    hidden = agent("get", "prod-db", env=inside)
    expect_error(hidden, 4)
    assert hidden.stdout == b""
    outside = ok(agent("get", "prod-db")).stdout.startswith(b"prod-")  # the standing grant, outside the session
    assert outside, "outside the session, the standing grant did not serve the value"


def test_serve_stops_on_sigint_too(owner, broker):
    assert broker.proc is not None
    broker.proc.send_signal(signal.SIGINT)
    assert broker.proc.wait(timeout=60) == 0
    assert broker.sockets() == []
