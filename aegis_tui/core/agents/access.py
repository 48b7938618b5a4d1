"""One way for the command line to reach credentials: through a running broker, or
straight from the vault when none runs.

Both answer the same questions with the same rules (sessions narrow what is visible,
revoked and expired credentials are refused) so an agent sees no difference, except
that through a broker a value needs a grant or a human's approval, while a process
that unlocked the vault itself has already proved it holds the key.
"""

from __future__ import annotations

import base64
import json
from abc import ABC, abstractmethod
from collections import Counter

from aegis_tui.core.broker.wire import DATA, END, FLUSH, HITS, MAX_STREAM_FRAME, STREAM_HEADER
from aegis_tui.core.errors import AegisError
from aegis_tui.core.secret import Secret

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (~2 ms) on the get path
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from aegis_tui.core.gitcred import GitRequest

    OutputFilterFactory = Callable[[int], Any]  # channel -> an object with feed(bytes) / flush()


class AgentAccess(ABC):
    @abstractmethod
    def get(self, reference: str, *, reason: str = "", via: str = "aegis-vault get",
            scopes: tuple[str, ...] = ()) -> tuple[str, Secret, str]:
        """(credential name, value, status: "exposed" deserves a warning)."""

    @abstractmethod
    def list(self, where: dict[str, str | None] | None = None) -> list[dict[str, Any]]:
        """Summaries (never values) of what this caller may see; ``where``: context,
        service, status, kind."""

    @abstractmethod
    def output_filters(self) -> OutputFilterFactory:
        """Maskers for a child's output channels; ``masked_hits`` sums them afterwards."""

    @abstractmethod
    def masked_hits(self) -> dict[str, int]: ...

    @abstractmethod
    def report_run(self, command: str, credentials: list[str], duration: float, exit_code: int | None,
                   signal: int | None, masked: dict[str, int]) -> None: ...

    @abstractmethod
    def git_get(self, request: GitRequest, reason: str = "") -> tuple[str, Secret]:
        """(user name, password) for what git asks."""

    @abstractmethod
    def git_erase(self, request: GitRequest) -> str: ...

    @abstractmethod
    def start_session(self, context: str, ttl_seconds: int, label: str, bind_pid: int | None) -> dict[str, Any]: ...

    @abstractmethod
    def end_session(self, session_id: str) -> tuple[dict[str, Any], int]: ...

    @abstractmethod
    def sessions(self) -> list[dict[str, Any]]: ...

    @abstractmethod
    def grants(self, include_inactive: bool) -> list[dict[str, Any]]: ...

    @abstractmethod
    def revoke_grant(self, grant_id: str, reason: str) -> dict[str, Any]: ...

    @abstractmethod
    def close(self) -> None: ...


def open_access(vault_path: str, unlock: Callable[[], Any]) -> AgentAccess:
    """The broker's access if one serves this vault, else the vault unlocked by ``unlock``."""
    from aegis_tui.core.broker.runtime import broker_may_run

    if broker_may_run(vault_path):
        from aegis_tui.core.broker.client import BrokerClient

        client = BrokerClient.connect(vault_path)
        if client is not None:
            return BrokerAccess(client, vault_path)
    return LocalAccess(unlock())


class BrokerAccess(AgentAccess):
    def __init__(self, client: Any, vault_path: str) -> None:
        from aegis_tui.core.broker.client import APPROVAL_WAIT_SECONDS

        self._client = client
        self._vault_path = vault_path
        self._wait = APPROVAL_WAIT_SECONDS
        self._masks: list[RemoteMask] = []

    def get(self, reference: str, *, reason: str = "", via: str = "aegis-vault get",
            scopes: tuple[str, ...] = ()) -> tuple[str, Secret, str]:
        answer = self._client.call("get", {"ref": reference, "reason": reason, "via": via, "scopes": list(scopes)},
                                   timeout=self._wait)
        return answer["name"], Secret(base64.b64decode(answer["value_b64"])), answer.get("status", "")

    def list(self, where: dict[str, str | None] | None = None) -> list[dict[str, Any]]:
        filters = {key: value for key, value in (where or {}).items() if value}
        return list(self._client.call("list", filters)["credentials"])

    def output_filters(self) -> OutputFilterFactory:
        from aegis_tui.core.broker.client import BrokerClient

        def connect() -> Any:
            client = BrokerClient.connect(self._vault_path, self._client.session)
            if client is None:
                raise AegisError("the broker went away; the command's output can no longer be masked")
            return client

        def open_channel(channel: int) -> RemoteMask:
            mask = RemoteMask(connect)
            self._masks.append(mask)
            return mask

        return open_channel

    def masked_hits(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for mask in self._masks:
            mask.finish()
            total.update(mask.hits)
        return dict(total)

    def report_run(self, command: str, credentials: list[str], duration: float, exit_code: int | None,
                   signal: int | None, masked: dict[str, int]) -> None:
        # Not waited for: the broker commits it whether or not we stay to hear "done", and
        # waiting for its disk sync would add a few milliseconds to every `run`.
        self._client.send("run.report", {"command": command, "credentials": credentials, "duration": duration,
                                         "exit_code": exit_code, "signal": signal, "masked": masked})

    def git_get(self, request: GitRequest, reason: str = "") -> tuple[str, Secret]:
        answer = self._client.call("git.get", {**_git_args(request), "reason": reason}, timeout=self._wait)
        return answer["username"], Secret(base64.b64decode(answer["password_b64"]))

    def git_erase(self, request: GitRequest) -> str:
        return str(self._client.call("git.erase", _git_args(request))["name"])

    def start_session(self, context: str, ttl_seconds: int, label: str, bind_pid: int | None) -> dict[str, Any]:
        args: dict[str, Any] = {"context": context, "ttl": ttl_seconds, "label": label}
        if bind_pid is not None:
            args["bind_pid"] = bind_pid
        return dict(self._client.call("session.start", args)["session"])

    def end_session(self, session_id: str) -> tuple[dict[str, Any], int]:
        answer = self._client.call("session.end", {"id": session_id})
        return answer["session"], int(answer["grants_revoked"])

    def sessions(self) -> list[dict[str, Any]]:
        return list(self._client.call("session.list")["sessions"])

    def grants(self, include_inactive: bool) -> list[dict[str, Any]]:
        return list(self._client.call("grants.list", {"all": include_inactive})["grants"])

    def revoke_grant(self, grant_id: str, reason: str) -> dict[str, Any]:
        return dict(self._client.call("grants.revoke", {"id": grant_id, "reason": reason})["grant"])

    def close(self) -> None:
        for mask in self._masks:
            mask.close()
        self._client.close()


def _git_args(request: GitRequest) -> dict[str, str]:
    return {"protocol": request.protocol, "host": request.host, "path": request.path, "username": request.username}


class RemoteMask:
    """An output filter whose masking happens in the broker: the values to hide never
    enter this process (the agent's side); only masked bytes come back."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._client: Any = None
        self.hits: Counter[str] = Counter()
        self._ended = False

    def _exchange(self, kind: bytes, data: bytes) -> bytes:
        """Connected on the first output, not before: a command that prints nothing (or
        only on one channel) costs no connection for it."""
        if self._client is None:
            if kind != DATA or not data:
                return b""
            self._client = self._connect()
            self._client.call("mask")
        out = []
        for start in range(0, max(len(data), 1), MAX_STREAM_FRAME):
            piece = data[start:start + MAX_STREAM_FRAME]
            self._client.raw.sendall(STREAM_HEADER.pack(kind, len(piece)) + piece)
            _, length = STREAM_HEADER.unpack(self._client.read_exact(STREAM_HEADER.size))
            out.append(self._client.read_exact(length))
        if kind == END:
            hit_kind, length = STREAM_HEADER.unpack(self._client.read_exact(STREAM_HEADER.size))
            if hit_kind == HITS:
                self.hits.update(json.loads(self._client.read_exact(length)))
        return b"".join(out)

    def feed(self, data: bytes) -> bytes:
        return self._exchange(DATA, data)

    def flush(self) -> bytes:
        return self._exchange(FLUSH, b"")

    def finish(self) -> bytes:
        if self._ended:
            return b""
        self._ended = True
        return self._exchange(END, b"")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class LocalAccess(AgentAccess):
    """The vault, unlocked by this process; the same visibility rules as the broker."""

    def __init__(self, vault: Any) -> None:
        from aegis_tui.core.agents.policy import current_session
        from aegis_tui.core.credentials import Credentials

        self._vault = vault
        self._credentials = Credentials(vault)
        self.session = current_session(vault)
        self._streams: list[Any] = []

    def get(self, reference: str, *, reason: str = "", via: str = "aegis-vault get",
            scopes: tuple[str, ...] = ()) -> tuple[str, Secret, str]:
        from aegis_tui.core.agents.policy import check_usable, resolve_visible

        credential = resolve_visible(self._credentials, reference, self.session)
        check_usable(credential, self._vault.clock())
        return credential.name, self._credentials.reveal(credential.name, purpose=via), str(credential.status)

    def list(self, where: dict[str, str | None] | None = None) -> list[dict[str, Any]]:
        from aegis_tui.core.agents.policy import list_visible, parse_filter
        from aegis_tui.core.credentials import gc_paused
        from aegis_tui.core.summary import credential_summary

        now = self._vault.clock()
        found = list_visible(self._credentials, self.session, parse_filter(where or {}))
        with gc_paused():  # 100k summaries allocate as much as the decoding did
            return [credential_summary(c, now) for c in found]

    def output_filters(self) -> OutputFilterFactory:
        from aegis_tui.core.redaction import Masker

        values = self._credentials.values(active_only=True)
        masker = Masker.for_versions(values)

        def open_channel(channel: int) -> Any:
            stream = masker.stream()
            self._streams.append(stream)
            return stream

        return open_channel

    def masked_hits(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for stream in self._streams:
            total.update(stream.hits)
        return dict(total)

    def report_run(self, command: str, credentials: list[str], duration: float, exit_code: int | None,
                   signal: int | None, masked: dict[str, int]) -> None:
        from aegis_tui.core.audit import Risk

        self._vault.audit.append("run", self._vault.actor, risk=Risk.MEDIUM if masked else Risk.LOW, target=command,
                                 detail={"credentials": credentials, "duration": round(duration, 3),
                                         "exit_code": exit_code, "signal": signal, "masked": masked})

    def git_get(self, request: GitRequest, reason: str = "") -> tuple[str, Secret]:
        from aegis_tui.core.agents.policy import check_usable, git_location, resolve_git
        from aegis_tui.core.broker.service import git_username

        credential = resolve_git(self._credentials, self.session, request)
        check_usable(credential, self._vault.clock())
        value = self._credentials.reveal(credential.name, purpose=f"git credential for {git_location(request)}")
        return git_username(credential, request), value

    def git_erase(self, request: GitRequest) -> str:
        from aegis_tui.core.agents.policy import git_location, resolve_git

        credential = resolve_git(self._credentials, self.session, request)
        self._credentials.mark_failing(credential.name, via=f"git rejected it at {git_location(request)}")
        return credential.name

    def start_session(self, context: str, ttl_seconds: int, label: str, bind_pid: int | None) -> dict[str, Any]:
        from aegis_tui.core.agents.sessions import Sessions
        from aegis_tui.core.broker.peer import start_time

        started = start_time(bind_pid) if bind_pid is not None else None
        return Sessions(self._vault).start(context, ttl_seconds, label=label, root_pid=bind_pid,
                                           root_started=started).to_dict()

    def end_session(self, session_id: str) -> tuple[dict[str, Any], int]:
        from aegis_tui.core.agents.sessions import Sessions

        session, revoked = Sessions(self._vault).end(session_id)
        return session.to_dict(), revoked

    def sessions(self) -> list[dict[str, Any]]:
        from aegis_tui.core.agents.sessions import Sessions

        now = self._vault.clock()
        found = Sessions(self._vault).list()
        if self.session is not None:
            found = [s for s in found if s.id == self.session.id]
        return [{**s.to_dict(), "state": s.state(now)} for s in found]

    def grants(self, include_inactive: bool) -> list[dict[str, Any]]:
        from aegis_tui.core.agents.grants import Grants

        now = self._vault.clock()
        found = Grants(self._vault).list(include_inactive=include_inactive)
        if self.session is not None:
            found = [g for g in found if g.session_id == self.session.id]
        return [{**g.to_dict(), "state": g.state(now)} for g in found]

    def revoke_grant(self, grant_id: str, reason: str) -> dict[str, Any]:
        from aegis_tui.core.agents.grants import Grants

        return Grants(self._vault).revoke(grant_id, reason=reason).to_dict()

    def close(self) -> None:
        self._vault.close()
