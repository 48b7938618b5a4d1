"""One way for the command line to reach credentials: through a running broker, or in
this process when none runs. Both perform the operations declared in
``core/operations``; only the transport differs.

Through a broker a value needs a grant or a human's approval. In this process, the
command unlocked the vault itself: it has proved it holds the key, so it acts with the
owner's authority (still narrowed to its agent session, if it runs in one).
"""

from __future__ import annotations

from binascii import a2b_base64

from aegis_tui.core.broker.wire import DATA, END, FLUSH, HITS, MAX_STREAM_FRAME, STREAM_HEADER, loads
from aegis_tui.core.errors import AegisError
from aegis_tui.core.secret import Secret

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (~2 ms) on the get path
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from aegis_tui.core.gitcred import GitRequest

    OutputFilterFactory = Callable[[int], Any]  # channel -> an object with feed(bytes) / flush()


class AgentAccess:
    """The operations, as methods; subclasses say how a request travels (``call``) and
    how a command's output is masked."""

    def call(self, op: str, args: dict[str, Any] | None = None, *, waits: bool = False) -> dict[str, Any]:
        """Perform ``op``; ``waits``: it may wait for a human's approval."""
        raise NotImplementedError

    def get(self, reference: str, *, reason: str = "", via: str = "aegis-vault get") -> tuple[str, Secret, str]:
        """(credential name, raw value, status: "exposed" deserves a warning): a reveal."""
        answer = self.call("get", {"ref": reference, "reason": reason, "via": via}, waits=True)
        return answer["name"], Secret(a2b_base64(answer["value_b64"])), answer.get("status", "")

    def inject(self, reference: str, command: list[str], program: str, *, reason: str = "",
               project_context: str | None = None) -> tuple[str, Secret]:
        """(credential name, value) for the environment of ``command``, which this process
        is about to start as ``program``."""
        args: dict[str, Any] = {"ref": reference, "reason": reason, "command": command, "program": program}
        if project_context is not None:
            args["project_context"] = project_context
        answer = self.call("inject", args, waits=True)
        return answer["name"], Secret(a2b_base64(answer["value_b64"]))

    def list(self, where: dict[str, str | None] | None = None) -> list[dict[str, Any]]:
        """Summaries (never values) of what this caller may see; ``where``: context,
        service, status, kind."""
        return list(self.call("list", {key: value for key, value in (where or {}).items() if value})["credentials"])

    def report_run(self, command: str, credentials: list[str], duration: float, exit_code: int | None,
                   signal: int | None, masked: dict[str, int]) -> None:
        self.call("run.report", {"command": command, "credentials": credentials, "duration": duration,
                                 "exit_code": exit_code, "signal": signal, "masked": masked})

    def git_get(self, request: GitRequest, reason: str = "") -> tuple[str, Secret]:
        """(user name, password) for what git asks."""
        answer = self.call("git.get", {**_git_args(request), "reason": reason}, waits=True)
        return answer["username"], Secret(a2b_base64(answer["password_b64"]))

    def git_erase(self, request: GitRequest) -> str:
        return str(self.call("git.erase", _git_args(request))["name"])

    def start_session(self, context: str, ttl_seconds: int, label: str,
                      bind_pid: int | None) -> tuple[dict[str, Any], str]:
        """The session (public fields) and the agent's bearer token."""
        args: dict[str, Any] = {"context": context, "ttl": ttl_seconds, "label": label}
        if bind_pid is not None:
            args["bind_pid"] = bind_pid
        answer = self.call("session.start", args)
        return dict(answer["session"]), str(answer["token"])

    def end_session(self, session_id: str) -> tuple[dict[str, Any], int]:
        answer = self.call("session.end", {"id": session_id})
        return answer["session"], int(answer["grants_revoked"])

    def sessions(self) -> list[dict[str, Any]]:
        return list(self.call("session.list")["sessions"])

    def grants(self, include_inactive: bool) -> list[dict[str, Any]]:
        return list(self.call("grants.list", {"all": include_inactive})["grants"])

    def revoke_grant(self, grant_id: str, reason: str) -> dict[str, Any]:
        return dict(self.call("grants.revoke", {"id": grant_id, "reason": reason})["grant"])

    def add_grant(self, **args: Any) -> dict[str, Any]:
        return dict(self.call("grants.add", {key: value for key, value in args.items() if value not in (None, "")})
                    ["grant"])

    def note(self, text: str) -> None:
        self.call("audit.note", {"text": text})

    def hold_values(self) -> None:
        """Make this process unreadable to the user's other processes before it receives
        a value (``core.hardening``)."""
        from aegis_tui.core.hardening import protect_process

        protect_process()

    def output_filters(self) -> OutputFilterFactory:
        """Maskers for a child's output channels; ``masked_hits`` sums them afterwards."""
        raise NotImplementedError

    def masked_hits(self) -> dict[str, int]:
        raise NotImplementedError

    @property
    def sandboxed(self) -> bool:
        """Whether the broker starts ``run``'s child (inside a sandboxed session)."""
        return False

    def close(self) -> None:
        raise NotImplementedError


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
        self._client = client
        self._vault_path = vault_path
        self._masks: list[RemoteMask] = []
        self._hello: dict[str, Any] | None = None

    def call(self, op: str, args: dict[str, Any] | None = None, *, waits: bool = False) -> dict[str, Any]:
        from aegis_tui.core.broker.client import APPROVAL_WAIT_SECONDS, CALL_TIMEOUT

        return dict(self._client.call(op, args or {}, timeout=APPROVAL_WAIT_SECONDS if waits else CALL_TIMEOUT))

    def hello(self) -> dict[str, Any]:
        if self._hello is None:
            self._hello = self.call("hello")
        return self._hello

    @property
    def sandboxed(self) -> bool:
        """Whether this broker is a sandboxed session's own socket: there, the broker
        starts ``run``'s child itself (``start_run``), since nothing in the sandbox may
        hold a value."""
        return self.hello().get("sandboxed") is True

    def start_run(self, needs: dict[str, str], contexts: dict[str, str], command: list[str], program: str,
                  cwd: str, reason: str, env: dict[str, str]) -> dict[str, Any]:
        """``run.start``: the broker checks each need as ``inject`` does and runs the
        command outside the sandbox with our stdin, stdout and stderr (sent along); our
        signals are passed on while it runs. Its exit code or signal, and what was masked."""
        from aegis_tui.core.run.signals import forwarded_signals

        args = {"needs": needs, "contexts": contexts, "command": command, "program": program, "cwd": cwd,
                "reason": reason, "env": env, "tty": _isatty(1)}
        client = self._client
        with forwarded_signals(lambda signum: client.send("run.signal", {"signal": signum})):
            return dict(client.call("run.start", args, timeout=None, fds=(0, 1, 2)))

    def hold_values(self) -> None:
        """The broker reads what this process is from ``/proc`` when it connects; once it
        has answered (so it has), this process hides itself, and the broker keeps what it
        read for this process's later connections."""
        self.hello()
        super().hold_values()

    def report_run(self, command: str, credentials: list[str], duration: float, exit_code: int | None,
                   signal: int | None, masked: dict[str, int]) -> None:
        # Not waited for: the broker commits it whether or not we stay to hear "done", and
        # waiting for its disk sync would add a few milliseconds to every `run`.
        self._client.send("run.report", {"command": command, "credentials": credentials, "duration": duration,
                                         "exit_code": exit_code, "signal": signal, "masked": masked})

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
        for mask in self._masks:
            mask.finish()
        return summed_hits(mask.hits for mask in self._masks)

    def close(self) -> None:
        for mask in self._masks:
            mask.close()
        self._client.close()


def _isatty(fd: int) -> bool:
    import os

    return os.isatty(fd)


def summed_hits(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    """Occurrences masked per label, added up over streams (``collections.Counter`` would
    import ``collections`` on every ``run`` for this one sum)."""
    total: dict[str, int] = {}
    for count in counts:
        for label, hits in count.items():
            total[label] = total.get(label, 0) + hits
    return total


def _git_args(request: GitRequest) -> dict[str, str]:
    return {"protocol": request.protocol, "host": request.host, "path": request.path, "username": request.username}


class RemoteMask:
    """An output filter whose masking happens in the broker: the values to hide never
    enter this process (the agent's side); only masked bytes come back."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._client: Any = None
        self.hits: dict[str, int] = {}
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
                self.hits = summed_hits([self.hits, loads(self._client.read_exact(length))])
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
    """The vault, unlocked by this process: the operations run here, as the owner's."""

    def __init__(self, vault: Any) -> None:
        import os

        from aegis_tui.core.operations.local_host import LocalHost
        from aegis_tui.core.processes import describe_process
        from aegis_tui.core.operations.caller import resolve_caller
        from aegis_tui.core.operations.registry import Authority

        self._vault = vault
        self._host = LocalHost(vault)
        # The same lookup as ``session_of_this_process``, keeping the caller it builds.
        self._caller = resolve_caller(self._host, describe_process(os.getpid(), os.getuid()),
                                      os.environ.get("AEGIS_SESSION") or None, frozenset({Authority.OWNER}))
        self._streams: list[Any] = []

    @property
    def session(self) -> Any:
        return self._caller.session

    def call(self, op: str, args: dict[str, Any] | None = None, *, waits: bool = False) -> dict[str, Any]:
        from aegis_tui.core.operations.perform import perform, run_to_completion

        return run_to_completion(perform(self._host, op, args or {}, self._caller))

    def output_filters(self) -> OutputFilterFactory:
        """Every active value of the vault: this process holds the key, so masking
        cannot tell it anything it could not read itself."""
        from aegis_tui.core.credentials import Credentials
        from aegis_tui.core.redaction import Masker

        masker = Masker.for_versions(Credentials(self._vault).values(active_only=True))

        def open_channel(channel: int) -> Any:
            stream = masker.stream()
            self._streams.append(stream)
            return stream

        return open_channel

    def masked_hits(self) -> dict[str, int]:
        return summed_hits(stream.hits for stream in self._streams)

    def close(self) -> None:
        self._vault.close()
