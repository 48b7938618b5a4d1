"""The host the operations run in when a command unlocked the vault itself: no broker,
no human to ask (the caller is the owner), each request committed at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aegis_tui.core.agents.grants import Grants
from aegis_tui.core.agents.sessions import AgentSession, Sessions

if TYPE_CHECKING:
    from aegis_tui.core.approvals import Decision, PendingRequest
    from aegis_tui.core.models import Credential
    from aegis_tui.core.operations.caller import Caller
    from aegis_tui.core.vault import Vault

T = TypeVar("T")


class LocalHost:
    can_ask = False
    approval_timeout = 0.0

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.grants = Grants(vault)
        self._given: set[str] = set()

    def sessions(self) -> list[AgentSession]:
        return Sessions(self.vault).list()

    def status(self) -> dict[str, Any]:
        return {"mode": "local"}

    async def ask(self, pending: PendingRequest, caller: Caller) -> Decision | None:
        return None

    async def committed(self, work: Callable[[], T]) -> T:
        with self.vault.store.transaction():
            return work()

    def remember_given(self, caller: Caller, credential: Credential) -> None:
        self._given.add(credential.id)

    def given(self, caller: Caller) -> set[str]:
        return set(self._given)

    def open_session_socket(self, session: AgentSession, plan: dict[str, Any]) -> str:
        from aegis_tui.core.errors import RefusedError

        raise RefusedError("a sandboxed session needs a broker to serve its socket (aegis-vault session exec "
                           "hosts one)")

    async def start_run(self, caller: Caller, launch: dict[str, Any]) -> dict[str, Any]:
        from aegis_tui.core.errors import RefusedError

        raise RefusedError("run.start is served by a broker, over a sandboxed session's socket")
