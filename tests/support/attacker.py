"""What an attacking agent uses in the security tests (tests/security/): the broker's
wire protocol spoken by hand, so the tests reach the broker's own checks and not only the
command line's; a session bound to a real ``session exec`` process tree; the session
token parsed from ``session start``'s export line; and a process that looks like
``aegis-vault run`` in ``/proc`` while running the attacker's code.

Everything here is the agent's side: no vault key, only the socket that every process of
the user can reach. The tests hold the broker to what it does with such a caller.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support.broker import Outcome, aegis, audit_entries, wait_until, without_key

# ``session start`` prints one line for ``eval``. The value is the session's bearer token
# (``ast_`` + 43 url-safe characters); older builds printed the public id (``as_`` + 16 hex)
# there, and the tests accept both so they can be run against either.
SESSION_LINE = re.compile(r"^export AEGIS_SESSION=(ast_[A-Za-z0-9_-]{43}|as_[0-9a-f]{16})$")

# The masking stream's frames (core/broker/wire.py): type byte and big-endian length.
STREAM_HEADER = struct.Struct(">cI")
DATA, FLUSH, END, HITS = b"D", b"F", b"E", b"H"
RAW_TIMEOUT = 30.0

# The vault the attacks aim at (tests/security/conftest.py builds it).
KEY = "5f" * 32
DEV_DB = "devdb-" + "4c1f9a" * 4  # acme/dev, with a git URL: what the agent is granted
DEV_OTHER = "devother-" + "b72e05" * 4  # acme/dev, never granted to anyone
PROD_DB = "proddb-" + "e90d3b" * 4  # acme/prod: outside the agent's context
PIN = "493817"  # personal: a short value an oracle could brute-force
GIT_URL = "https://git.example.test/acme/app"
VALUES = {"dev-db": DEV_DB, "dev-other": DEV_OTHER, "prod-db": PROD_DB, "pin": PIN}


def ok(result: Outcome) -> Outcome:
    assert result.returncode == 0, (result.returncode, result.err)
    return result


def session_token(outcome: Outcome) -> str:
    """The token from ``session start``'s stdout (exactly one export line)."""
    assert outcome.returncode == 0, (outcome.returncode, outcome.err)
    lines = outcome.out.splitlines()
    assert len(lines) == 1, f"expected one export line, got {len(lines)}"
    found = SESSION_LINE.match(lines[0])
    assert found, "session start printed no export AEGIS_SESSION=... line"
    return found.group(1)


def start_session(env: Mapping[str, str], context: str, *, ttl: str = "1h", label: str = "") -> str:
    """A session started the way an agent would (no key: through the broker); its token."""
    args = ["session", "start", "--context", context, "--ttl", ttl] + (["--label", label] if label else [])
    return session_token(aegis(without_key(env), *args))


def sessions_as_owner(owner_env: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every session, ended ones too, as the vault's owner lists them (``env`` holds the key)."""
    result = aegis(owner_env, "session", "list", "--all", "--json")
    assert result.returncode == 0, result.err
    return list(json.loads(result.out))


def session_by_label(owner_env: Mapping[str, str], label: str) -> dict[str, Any]:
    """The one session with ``label``: how the owner finds a session's public id."""
    found = [s for s in sessions_as_owner(owner_env) if s.get("label") == label]
    assert len(found) == 1, f"expected one session labelled {label!r}, found {len(found)}"
    return found[0]


def grants_as_owner(owner_env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    result = aegis(owner_env, "grants", "list", "--all", "--json")
    assert result.returncode == 0, result.err
    return {grant["id"]: grant for grant in json.loads(result.out)}


def vault_file_bytes(home: Path) -> bytes:
    """The vault's SQLite file and its companions, concatenated (missing ones are empty)."""
    return b"|".join((home / f"vault.db{suffix}").read_bytes() if (home / f"vault.db{suffix}").exists() else b""
                     for suffix in ("", "-wal", "-shm", "-journal"))


class RawClient:
    """One connection to the broker, speaking its JSON-lines protocol by hand: what a
    prompt-injected agent can do with nothing but the socket path."""

    def __init__(self, path: str, *, timeout: float = RAW_TIMEOUT) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self._next = 0

    def send(self, op: str, args: dict[str, Any] | None = None, *, session: str | None = None) -> None:
        self._next += 1
        message: dict[str, Any] = {"v": 1, "id": self._next, "op": op, "args": args or {}}
        if session:
            message["session"] = session
        self.sock.sendall(json.dumps(message).encode() + b"\n")

    def reply(self) -> dict[str, Any] | None:
        """The next reply line, or None when the broker hung up."""
        try:
            line = self.file.readline()
        except (ConnectionError, OSError):
            return None
        return json.loads(line) if line.strip() else None

    def call(self, op: str, args: dict[str, Any] | None = None, *, session: str | None = None) -> dict[str, Any] | None:
        try:
            self.send(op, args, session=session)
        except (BrokenPipeError, ConnectionError):
            return None
        return self.reply()

    # -- the masking stream -------------------------------------------------------------
    def frame(self, kind: bytes, payload: bytes = b"") -> None:
        self.sock.sendall(STREAM_HEADER.pack(kind, len(payload)) + payload)

    def read_frame(self) -> tuple[bytes, bytes] | None:
        header = self._exactly(STREAM_HEADER.size)
        if header is None:
            return None
        kind, length = STREAM_HEADER.unpack(header)
        payload = self._exactly(length) if length else b""
        return None if payload is None else (kind, payload)

    def _exactly(self, count: int) -> bytes | None:
        try:
            data = self.file.read(count)
        except (ConnectionError, OSError):
            return None
        return data if len(data) == count else None

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class MaskRefused(Exception):
    """The broker would not open, or cut, a masking stream."""


def mask_through_broker(path: str, session: str | None, chunks: list[bytes]) -> tuple[bytes, dict[str, int]]:
    """Open one ``mask`` stream, feed ``chunks`` (a DATA and a FLUSH frame each, as ``run``
    does when the child goes idle), end it; what came back and the hit counts.
    ``MaskRefused`` if the broker refuses the stream or hangs up before the end."""
    with RawClient(path) as client:
        reply = client.call("mask", {}, session=session)
        if reply is None or not reply.get("ok"):
            raise MaskRefused(json.dumps(reply)[:300])
        out: list[bytes] = []
        try:
            for chunk in chunks:
                client.frame(DATA, chunk)
                client.frame(FLUSH)
                for _ in range(2):
                    answer = client.read_frame()
                    if answer is None:
                        raise MaskRefused("the broker closed the stream")
                    out.append(answer[1])
            client.frame(END)
            tail = client.read_frame()
            hits = client.read_frame()
        except (BrokenPipeError, ConnectionError) as error:
            raise MaskRefused(f"the broker closed the stream ({error})") from None
        if tail is None or hits is None or hits[0] != HITS:
            raise MaskRefused("the broker closed the stream before its end")
        return b"".join(out) + tail[1], json.loads(hits[1])


class BoundSession:
    """An agent started with ``session exec``: a shell that writes its ``AEGIS_SESSION``
    to a file, runs ``script`` (if any) and then waits until told to exit, so its session
    stays bound to a live process tree while the test attacks it from outside."""

    def __init__(self, env: Mapping[str, str], context: str, *, label: str, ttl: str = "1h",
                 script: str = "") -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="aegis-bound-", dir="/tmp"))
        self.token_file = self.folder / "token"
        self.stop_file = self.folder / "stop"
        shell = (f'printf %s "$AEGIS_SESSION" > {shlex.quote(str(self.token_file))}.tmp && '
                 f'mv {shlex.quote(str(self.token_file))}.tmp {shlex.quote(str(self.token_file))}\n'
                 f"{script}\n"
                 f'while [ ! -e {shlex.quote(str(self.stop_file))} ]; do sleep 0.05; done\n')
        self.proc = subprocess.Popen(
            # Uncontained: the attacks on a bound session come from outside its tree and need
            # the token the agent holds (a sandboxed agent holds none).
            [sys.executable, "-m", "aegis_tui", "session", "exec", "--no-sandbox", "--context", context, "--ttl", ttl,
             "--label", label, "--", "sh", "-c", shell],
            env=without_key(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        self.token = wait_until(self._token, "session exec to start its agent", timeout=60)

    def _token(self) -> str | None:
        if self.proc.poll() is not None:
            _, err = self.proc.communicate()
            raise AssertionError(f"session exec exited with {self.proc.returncode}: {err.decode(errors='replace')}")
        if not self.token_file.exists():
            return None
        return self.token_file.read_text().strip() or None

    def stop(self) -> Outcome:
        """Let the agent exit; ``session exec`` then ends the session."""
        self.stop_file.touch()
        try:
            out, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)
        return Outcome(self.proc.returncode, out, err)

    def __enter__(self) -> BoundSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.proc.returncode is None:
            self.stop()


def git_credential_fill(env: Mapping[str, str], request: bytes) -> Outcome:
    """``git credential fill`` (real git) with this vault's helper, as an agent would run it."""
    proc = subprocess.run(["git", "-c", "credential.helper=aegis", "-c", "credential.useHttpPath=true",
                           "credential", "fill"], input=request, capture_output=True, env=dict(env),
                          timeout=120, start_new_session=True)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def fake_token_like(token: str) -> str:
    """A well-formed token (or id, for older builds) that names no session."""
    if token.startswith("ast_"):
        return "ast_" + "Q" * 43
    return "as_" + "0" * 16


def leaked(outcome: Outcome) -> list[str]:
    """The names of the credentials whose values the process printed (never the values)."""
    seen = outcome.stdout + outcome.stderr
    return [name for name, value in VALUES.items() if value.encode() in seen]


def audit_entries_after(owner_env: Mapping[str, str], seq: int) -> list[dict[str, Any]]:
    """The audit entries written after entry ``seq`` (read by the owner)."""
    return [entry for entry in audit_entries(owner_env) if entry["seq"] > seq]


# -- an attacker whose /proc looks like `aegis-vault run` -------------------------------------
# The broker may believe what ``/proc/PID/exe`` and ``/proc/PID/cmdline`` say about a peer:
# this interpreter, running ``-m aegis_tui run -- true``. A same-user process can show
# exactly that while running its own code: put a package named ``aegis_tui`` first on
# PYTHONPATH. These helpers do so, to hold the broker to what it hands such a process
# (only what that process itself was given), not merely to the command-line check.
_FAKE_MAIN = """import sys
sys.path.insert(0, {root!r})
from tests.support.attacker import fake_run_main
fake_run_main()
"""
FAKE_RUN_ARGV = ("run", "--", "true")


def run_as_fake_aegis_run(env: Mapping[str, str], socket_path: str, action: str, plan: dict[str, Any],
                          workdir: Path, *, timeout: float = 240) -> dict[str, Any]:
    """Run ``action`` (see ``fake_run_main``) in a process whose command line is that of
    ``aegis-vault run -- true``; its JSON result. It runs in ``workdir``: ``-m`` puts the
    working folder first on ``sys.path``, ahead of PYTHONPATH."""
    package = workdir / "fake" / "aegis_tui"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    root = str(Path(__file__).resolve().parents[2])
    (package / "__main__.py").write_text(_FAKE_MAIN.format(root=root))
    (workdir / "plan.json").write_text(json.dumps(plan))
    result = workdir / "result.json"
    result.unlink(missing_ok=True)
    child_env = {**without_key(env), "ATTACK_SOCKET": socket_path, "ATTACK_ACTION": action,
                 "ATTACK_PLAN": str(workdir / "plan.json"), "ATTACK_RESULT": str(result),
                 "PYTHONPATH": os.pathsep.join(p for p in (str(package.parent), env.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, "-m", "aegis_tui", *FAKE_RUN_ARGV], env=child_env, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=timeout, start_new_session=True, cwd=workdir)
    assert proc.returncode == 0 and result.exists(), (proc.returncode, proc.stderr.decode(errors="replace")[-2000:])
    return dict(json.loads(result.read_text()))


def fake_run_main() -> None:
    """The attacker's code inside the fake ``aegis-vault run`` process."""
    path, session = os.environ["ATTACK_SOCKET"], os.environ.get("AEGIS_SESSION") or None
    plan = json.loads(Path(os.environ["ATTACK_PLAN"]).read_text())
    action = os.environ["ATTACK_ACTION"]
    if action == "mask-guesses":
        result = mask_guesses(path, session, [chunk.encode() for chunk in plan["chunks"]])
    elif action == "mask-brute-force":
        result = mask_brute_force(path, session, plan["streams"], plan["per_stream"], plan["secret"],
                                  plan["give_up_seconds"])
    elif action == "calls":
        with RawClient(path) as client:
            result = {"replies": [client.call(op, args, session=session) for op, args in plan["calls"]]}
    else:
        raise SystemExit(f"unknown action {action}")
    Path(os.environ["ATTACK_RESULT"]).write_text(json.dumps(result))


def mask_guesses(path: str, session: str | None, chunks: list[bytes]) -> dict[str, Any]:
    """One stream of guesses: what came back, or why the broker refused."""
    try:
        out, hits = mask_through_broker(path, session, chunks)
    except MaskRefused as refusal:
        return {"refused": str(refusal)}
    return {"refused": None, "out": out.decode("latin-1"), "hits": hits}


def six_digits(first: int, count: int) -> bytes:
    return b"".join(b"%06d\n" % number for number in range(first, first + count))


def mask_brute_force(path: str, session: str | None, streams: int, per_stream: int, secret: str,
                     give_up_seconds: float) -> dict[str, Any]:
    """Try the 6-digit space, ``per_stream`` candidates per stream, until refused."""
    started = time.monotonic()
    found = False
    for stream in range(streams):
        if time.monotonic() - started > give_up_seconds:
            return {"refused_at": None, "served": stream, "found": found, "seconds": time.monotonic() - started}
        sent = six_digits(stream * per_stream, per_stream)
        try:
            out, _ = mask_through_broker(path, session, [sent])
        except MaskRefused as refusal:
            return {"refused_at": stream, "served": stream, "found": found, "reason": str(refusal)[:300],
                    "seconds": time.monotonic() - started}
        found = found or (secret.encode() + b"\n" in sent and secret.encode() + b"\n" not in out)
    return {"refused_at": None, "served": streams, "found": found, "seconds": time.monotonic() - started}
