"""A vault, its owner and a headless broker for the attack tests.

The owner holds ``AEGIS_VAULT_KEY``; the agent does not, so whatever it gets, it got
through the broker (a real ``aegis-vault serve`` on a private runtime folder, with a
one-second approval timeout: no app is attached, so a request that needs a human is
denied quickly). Four credentials in three contexts give the attacks something to aim
at: the agent's own context (``acme/dev``), production (``acme/prod``) and a personal
6-digit PIN.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.attacker import DEV_DB, DEV_OTHER, GIT_URL, KEY, PIN, PROD_DB, ok
from tests.support.broker import Broker, Outcome, isolate


@pytest.fixture
def owner(cli, request):  # type: ignore[no-untyped-def]
    """The vault's owner (``cli`` with the key), a private runtime folder, four credentials."""
    isolate(cli.env, request.addfinalizer)
    cli.env["AEGIS_VAULT_KEY"] = KEY
    ok(cli("init", "--no-passphrase"))
    ok(cli("add", "dev-db", "--context", "acme/dev", "--url", GIT_URL, input=DEV_DB))
    ok(cli("add", "dev-other", "--context", "acme/dev", input=DEV_OTHER))
    ok(cli("add", "prod-db", "--context", "acme/prod", input=PROD_DB))
    ok(cli("add", "pin", "--context", "personal", input=PIN))
    return cli


@pytest.fixture
def broker(owner, tmp_path: Path) -> Iterator[Broker]:  # type: ignore[no-untyped-def]
    with Broker(owner.env, tmp_path / "serve.log", approval_timeout="1s") as running:
        yield running


@pytest.fixture
def agent(owner, broker) -> Callable[..., Outcome]:  # type: ignore[no-untyped-def]
    """``aegis-vault ARGS`` as an agent runs it: no key, so only through the broker."""

    def run(*args: str, env: dict[str, Any] | None = None, **kwargs: Any) -> Outcome:
        return owner(*args, env={**(env or {}), "AEGIS_VAULT_KEY": None}, **kwargs)

    return run

