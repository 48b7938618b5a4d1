"""Group commit: the requests that arrive in one turn of the event loop share one
transaction (one disk sync, one signature of the audit head), each in its own
savepoint. Every request still gets its own value and its own audit entry, the chain
verifies, and one request failing inside the batch leaves the others whole.

Requests go through ``BrokerService.handle`` as the server would call it, from this
process as the peer. Transactions are counted with SQLite's statement trace on the
vault's own connection: an observation of what ran, nothing is replaced.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from aegis_tui.core.agents.grants import INJECT, REVEAL, Grants
from aegis_tui.core.processes import PeerInfo, describe_process
from aegis_tui.core.broker.protocol import Request
from aegis_tui.core.broker.service import BrokerService
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import AegisError, RefusedError
from aegis_tui.core.models import Status
from aegis_tui.core.secret import Secret

COUNT = 40
WAIT = 120.0


def value_for(number: int) -> bytes:
    return f"group-commit-value-{number:03d}-0123456789".encode()


@pytest.fixture
def peer() -> PeerInfo:
    return describe_process(os.getpid(), os.getuid())


@pytest.fixture
def service(made) -> BrokerService:  # type: ignore[no-untyped-def]
    creds = Credentials(made.vault)
    grants = Grants(made.vault)
    for number in range(COUNT):
        credential = creds.add(f"cred-{number:03d}", Secret(value_for(number)), context="acme")
        grants.create(credential=credential, rights=(INJECT, REVEAL))  # standing: nobody needs to approve
    return BrokerService(made.vault, approval_timeout=600)


@contextmanager
def transactions(made) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """The statements the vault's connection runs meanwhile (SQLite's own trace hook)."""
    seen: list[str] = []
    conn = made.vault.store._conn  # the store's connection: observed, not replaced
    conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        conn.set_trace_callback(None)


def get(service: BrokerService, peer: PeerInfo, number: int, ref: str | None = None) -> Any:
    request = Request(number, "get", None, {"ref": ref or f"cred-{number:03d}", "via": "group-commit test"})
    return service.handle(request, peer)


def decoded(result: dict[str, Any]) -> bytes:
    return base64.b64decode(result["value_b64"])


async def test_concurrent_gets_share_one_transaction_and_each_gets_its_own_value(made, service, peer) -> None:
    first = made.vault.audit.tail(1)[0].seq
    with transactions(made) as seen:
        results = await asyncio.wait_for(asyncio.gather(*(get(service, peer, n) for n in range(COUNT))), WAIT)
    right = [decoded(result) == value_for(n) and result["name"] == f"cred-{n:03d}" for n, result in enumerate(results)]
    assert all(right) and len(right) == COUNT
    assert sum(statement.startswith("BEGIN") for statement in seen) == 1
    assert sum(statement == "COMMIT" for statement in seen) == 1
    assert sum(statement.startswith("SAVEPOINT") for statement in seen) == COUNT
    reads = [e for e in made.vault.audit.entries(after_seq=first) if e.operation == "read"]
    assert sorted(e.target for e in reads) == [f"cred-{n:03d}" for n in range(COUNT)]
    assert all(e.outcome == "ok" and e.detail["via"] == "group-commit test" and e.detail["grant"] for e in reads)
    assert all(e.actor["pid"] == os.getpid() for e in reads)
    report = made.vault.audit.verify()
    assert report.ok, report.problems
    assert report.unsigned_tail == 0  # the head was signed once, at the end of the batch, and covers them all


async def test_the_same_credential_asked_many_times_at_once_is_read_and_audited_each_time(made, service, peer) -> None:
    first = made.vault.audit.tail(1)[0].seq
    results = await asyncio.wait_for(
        asyncio.gather(*(get(service, peer, n, ref="cred-007") for n in range(COUNT))), WAIT)
    assert sum(decoded(result) == value_for(7) for result in results) == COUNT
    reads = [e for e in made.vault.audit.entries(after_seq=first) if e.operation == "read"]
    assert len(reads) == COUNT and {e.target for e in reads} == {"cred-007"}
    assert made.vault.audit.verify().ok


async def test_batches_after_batches_keep_the_chain_whole(made, service, peer) -> None:
    first = made.vault.audit.tail(1)[0].seq
    for _ in range(5):
        results = await asyncio.wait_for(asyncio.gather(*(get(service, peer, n) for n in range(0, COUNT, 3))), WAIT)
        assert all(decoded(r) == value_for(n) for n, r in zip(range(0, COUNT, 3), results))
    reads = [e for e in made.vault.audit.entries(after_seq=first) if e.operation == "read"]
    assert len(reads) == 5 * len(range(0, COUNT, 3))
    assert [e.seq for e in made.vault.audit.entries()] == list(range(1, made.vault.audit.tail(1)[0].seq + 1))
    report = made.vault.audit.verify()
    assert report.ok and report.unsigned_tail == 0


async def revoke_meanwhile(made, kit, name: str) -> None:  # type: ignore[no-untyped-def]
    """Another process (a second connection to the same file) revokes a credential."""
    other = kit.open_unlocked(made.path, made.clock)
    try:
        Credentials(other).set_status(name, Status.REVOKED, reason="leaked")
    finally:
        other.close()


async def gather_with_a_revocation_inside_the_batch(made, kit, service, peer, victim: int):  # type: ignore[no-untyped-def]
    # Tasks start in order: the victim's get passes every check and joins the batch, then
    # the revocation commits, then the others join; the batch commits after all of them.
    jobs = [get(service, peer, victim), revoke_meanwhile(made, kit, f"cred-{victim:03d}")]
    jobs += [get(service, peer, n) for n in range(COUNT) if n != victim]
    with transactions(made) as seen:
        outcomes = await asyncio.wait_for(asyncio.gather(*jobs, return_exceptions=True), WAIT)
    return outcomes, seen


async def test_one_request_failing_inside_a_batch_does_not_undo_the_others(made, kit, service, peer) -> None:
    victim = 5
    first = made.vault.audit.tail(1)[0].seq
    outcomes, seen = await gather_with_a_revocation_inside_the_batch(made, kit, service, peer, victim)
    failed, revoked_meanwhile, rest = outcomes[0], outcomes[1], outcomes[2:]
    assert revoked_meanwhile is None
    assert isinstance(failed, RefusedError) and "revoked" in str(failed)
    # One transaction for the whole batch, then one for the audit entry of the refusal.
    assert sum(statement.startswith("BEGIN") for statement in seen) == 2
    others = [n for n in range(COUNT) if n != victim]
    assert all(isinstance(r, dict) and decoded(r) == value_for(n) for n, r in zip(others, rest))
    entries = list(made.vault.audit.entries(after_seq=first))
    ok_reads = [e.target for e in entries if e.operation == "read" and e.outcome == "ok"]
    assert sorted(ok_reads) == [f"cred-{n:03d}" for n in others]
    assert f"cred-{victim:03d}" not in ok_reads
    assert made.vault.audit.verify().ok


async def test_a_request_refused_inside_a_batch_is_still_audited(made, kit, service, peer) -> None:
    """The refusal of the revoked credential must leave a trace, like every other refusal
    (``Credentials.reveal`` audits refusals; ``obtain`` audits ``access.refused`` when it
    sees the revocation first)."""
    victim = 9
    first = made.vault.audit.tail(1)[0].seq
    outcomes, _ = await gather_with_a_revocation_inside_the_batch(made, kit, service, peer, victim)
    assert isinstance(outcomes[0], RefusedError)
    refusals = [e for e in made.vault.audit.entries(after_seq=first)
                if e.target == f"cred-{victim:03d}" and e.outcome == "denied"]
    assert refusals, "a request refused inside a batch left no audit entry"


async def test_a_once_grant_is_used_only_once_by_concurrent_requests(made, peer) -> None:
    credential = Credentials(made.vault).add("once", Secret(b"only-once-value-0123456789"), context="acme")
    grant = Grants(made.vault).create(credential=credential, uses=1, rights=(REVEAL,))
    service = BrokerService(made.vault, approval_timeout=1)  # the losers ask a human; nobody answers
    first = made.vault.audit.tail(1)[0].seq
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(get(service, peer, n, ref="once") for n in range(6)), return_exceptions=True), WAIT)
    handed_out = [o for o in outcomes if isinstance(o, dict)]
    assert len(handed_out) == 1
    right = decoded(handed_out[0]) == b"only-once-value-0123456789"
    assert right
    assert all(isinstance(o, AegisError) for o in outcomes if not isinstance(o, dict))
    assert Grants(made.vault).get(grant.id).uses_left == 0
    reads = [e for e in made.vault.audit.entries(after_seq=first) if e.operation == "read" and e.outcome == "ok"]
    assert len(reads) == 1
    assert made.vault.audit.verify().ok


async def test_an_n_use_grant_hands_out_exactly_n_values_under_concurrency(made, peer) -> None:
    credential = Credentials(made.vault).add("thrice", Secret(b"three-times-value-0123456789"), context="acme")
    grant = Grants(made.vault).create(credential=credential, uses=3, rights=(REVEAL,))
    service = BrokerService(made.vault, approval_timeout=1)  # the losers ask a human; nobody answers
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(get(service, peer, n, ref="thrice") for n in range(8)), return_exceptions=True), WAIT)
    assert sum(isinstance(o, dict) for o in outcomes) == 3
    assert Grants(made.vault).get(grant.id).state(made.clock()) == "used"
    assert made.vault.audit.verify().ok
