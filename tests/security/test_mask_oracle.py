"""The broker's ``mask`` stream used as an oracle.

``aegis-vault run`` pipes its child's output through the broker, which answers with the
output masked. An agent can open that stream itself and feed it guesses: whatever comes
back masked is a value. Two attackers try it, both speaking the wire protocol by hand: a
plain script, and a process whose ``/proc`` shows ``aegis-vault run -- true`` (this
interpreter, a look-alike ``aegis_tui`` package first on PYTHONPATH). Either may be
refused; if served, a guess at anything the caller was not given (a PIN in another
context, a credential of its own context) comes back exactly as sent, with no label
naming it. Every stream is audited, and one process trying the whole 6-digit space is
cut off before it finishes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.attacker import (
    DEV_OTHER,
    PIN,
    PROD_DB,
    mask_guesses,
    ok,
    run_as_fake_aegis_run,
    session_by_label,
    six_digits,
    start_session,
)
from tests.support.broker import audit_entries

OUTSIDE_LABELS = ("[aegis:pin]", "[aegis:prod-db]", "[aegis:dev-other]")
AROUND_THE_PIN = six_digits(493000, 1000)  # holds PIN
GUESSES = [AROUND_THE_PIN, PROD_DB.encode() + b"\n", DEV_OTHER.encode() + b"\n"]


@pytest.fixture
def given(owner, broker, agent):  # type: ignore[no-untyped-def]
    """An agent session in acme/dev that was given dev-db (injected by a real ``run``,
    whose output the broker masked: the stream does its job for what was given).
    Returns the session's token."""
    token = start_session(owner.env, "acme/dev", label="mask-agent")
    ok(owner("grants", "add", "dev-db", "--session", session_by_label(owner.env, "mask-agent")["id"]))
    ran = agent("run", "--need", "dev-db=X", "--", "sh", "-c", 'echo "$X"', env={"AEGIS_SESSION": token})
    masked = ok(ran).out.strip() == "[aegis:dev-db]"
    assert masked, "run did not mask the value it injected"
    return token


def judge(who: str, result: dict) -> list[str]:  # type: ignore[type-arg]
    """What an attacker learned from one stream of GUESSES (nothing, if it was refused)."""
    if result["refused"] is not None:
        return []
    out = result["out"].encode("latin-1")
    problems = [f"{who}: the stream named {label}" for label in OUTSIDE_LABELS if label.encode() in out]
    if out != b"".join(GUESSES):
        problems.append(f"{who}: guesses did not come back exactly as sent (PIN masked: {PIN.encode() not in out})")
    if set(result["hits"]) - {"dev-db"}:
        problems.append(f"{who}: the hit counts name {sorted(set(result['hits']) - {'dev-db'})}")
    return problems


def test_a_mask_stream_tells_nothing_about_values_outside_the_callers_context_or_never_given_to_it(
        owner, broker, given, tmp_path: Path):
    plain = mask_guesses(broker.socket_path, given, GUESSES)
    look_alike = run_as_fake_aegis_run(owner.env | {"AEGIS_SESSION": given}, broker.socket_path, "mask-guesses",
                                       {"chunks": [chunk.decode() for chunk in GUESSES]}, tmp_path)
    problems = judge("a plain script", plain) + judge("a look-alike aegis-vault run", look_alike)
    assert not problems, "\n".join(problems)
    streams = [e for e in audit_entries(owner.env) if e["operation"] == "mask.stream"]
    assert streams, "no mask.stream audit entry (not even for the real run's output)"


def test_one_process_trying_the_whole_6_digit_space_through_mask_streams_is_cut_off_and_audited(
        owner, broker, given, tmp_path: Path):
    plan = {"streams": 1000, "per_stream": 1000, "secret": PIN, "give_up_seconds": 120.0}
    result = run_as_fake_aegis_run(owner.env | {"AEGIS_SESSION": given}, broker.socket_path, "mask-brute-force",
                                   plan, tmp_path)
    served, refused_at, found, seconds = result["served"], result["refused_at"], result["found"], result["seconds"]
    assert refused_at is not None, (f"{served} mask streams ({served * 1000} candidates) were served in "
                                    f"{seconds:.1f} s and none refused; the PIN was {'' if found else 'not '}found")
    assert not found, "the PIN was found before the broker cut the streams off"
    entries = audit_entries(owner.env)
    assert [e for e in entries if e["operation"] == "mask.stream"], "no mask.stream audit entries"
    assert broker.proc is not None and broker.proc.poll() is None
