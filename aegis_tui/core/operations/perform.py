"""Run one declared operation for one caller: check the arguments and the authority,
then the handler. The only entry point for the broker and for in-process access."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from aegis_tui.core.errors import ProtocolError, RefusedError
from aegis_tui.core.operations.caller import Caller, Host
from aegis_tui.core.operations.registry import Authority, find, validate_args


async def perform(host: Host, name: str, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    op = find(name)
    if op.handler is None:
        where = "the owner channel" if op.authority is not Authority.CALLER else "its own stream"
        raise ProtocolError(f"{name} needs {where}")
    validate_args(op, args)
    if op.authority is not Authority.CALLER and op.authority not in caller.authority:
        raise RefusedError(f"{name} needs the vault's owner (a command that unlocked the vault, or the app)")
    return await op.handler(host, args, caller)


def run_to_completion(coroutine: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Drive an operation that never waits (in-process hosts ask nobody and commit at
    once) without an event loop: importing asyncio would cost the command line more
    than the operation itself."""
    try:
        coroutine.send(None)
    except StopIteration as finished:
        return finished.value  # type: ignore[no-any-return]
    coroutine.close()
    raise AssertionError("an in-process operation waited for something")
