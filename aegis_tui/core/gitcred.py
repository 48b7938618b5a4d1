"""git's credential helper protocol: reading git's question, writing the answer, and
deciding which stored credential answers it.

Everything here is a pure function over text (``read_request`` reads only the stream it
is handed), so the helper process stays a thin shell around it. Error messages never
repeat a value from the request: on ``store`` and ``erase`` git sends the password
itself, and a malformed line might be one.

Matching is by the credential's ``url`` field, which people type by hand. It follows
git's own rules for ``credential.<url>.*``: a path in the stored url only matches on
whole path segments, and only when git sends a path at all, which it does only with
``credential.useHttpPath=true``. Without that, a repository-specific credential is
never handed out for some other repository on the same host.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import BinaryIO, NamedTuple, TypeVar
from urllib.parse import unquote, urlsplit

from aegis_tui.core.errors import ConflictError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from aegis_tui.core.models import Credential

MAX_REQUEST_BYTES = 64 * 1024  # git's requests are a few hundred bytes; anything huge is not git
_FIELDS = frozenset({"protocol", "host", "path", "username"})
_CASE_INSENSITIVE = frozenset({"protocol", "host"})
_DEFAULT_PORTS = {"https": 443, "http": 80}
_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# git reads lines CRLF-aware, so a trailing CR would be silently dropped, not carried.
_UNCARRIABLE = ("\n", "\r", "\0")

T = TypeVar("T")


class GitRequest(NamedTuple):
    """What git wants a credential for. ``host`` keeps a ``:port``; ``path`` has no leading slash."""

    protocol: str
    host: str
    path: str
    username: str


class _Location(NamedTuple):
    """A url reduced to what matching compares: empty scheme/username mean "not stated"."""

    scheme: str
    username: str
    hostname: str
    port: int | None  # None also when it is the scheme's default port
    segments: tuple[str, ...]


def _too_long() -> UsageError:
    return UsageError(f"git credential request is longer than {MAX_REQUEST_BYTES} bytes")


def read_request(stream: BinaryIO) -> GitRequest:
    """Read one request from ``stream`` and parse it.

    Stops at the blank line that ends a request instead of reading to end of file, so a
    caller that keeps the pipe open (or a person typing a request) still gets an answer;
    and never reads more than the cap, whatever is on the other end.
    """
    lines: list[bytes] = []
    size = 0
    while True:
        line = stream.readline(MAX_REQUEST_BYTES + 1 - size)
        size += len(line)
        if size > MAX_REQUEST_BYTES:
            raise _too_long()
        if line in (b"", b"\n", b"\r\n"):
            break
        lines.append(line)
    try:
        text = b"".join(lines).decode("utf-8")
    except UnicodeDecodeError:
        # ``from None``: the decode error's own message quotes the offending bytes.
        raise UsageError("git credential request is not UTF-8 text") from None
    return parse_request(text)


def parse_request(text: str) -> GitRequest:
    """Parse ``key=value`` lines up to the first blank line; unknown keys are ignored."""
    if len(text) > MAX_REQUEST_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_REQUEST_BYTES:
        raise _too_long()
    if "\0" in text:
        raise UsageError("git credential request contains a NUL character, which the protocol does not allow")
    fields: dict[str, str] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if not line:
            break
        key, equals, value = line.partition("=")
        if not equals or not key:
            raise UsageError(f"git credential request: line {number} is not key=value")
        if key == "url":
            given = _url_fields(value, number)
        elif key in _FIELDS:
            given = {key: value}
        else:
            continue  # wwwauth[], capability[], password, ...: not needed to find a credential
        for name, part in given.items():
            part = part.lower() if name in _CASE_INSENSITIVE else part
            if fields.setdefault(name, part) != part:
                raise UsageError(f"git credential request gives {name} twice, with different values")
    for name in ("protocol", "host"):
        if not fields.get(name):
            raise UsageError(f"git credential request names no {name}")
    return GitRequest(fields["protocol"], fields["host"], fields.get("path", "").lstrip("/"),
                      fields.get("username", ""))


def _url_fields(value: str, number: int) -> dict[str, str]:
    """The parts git itself would take from ``url=``: only those the url actually has."""
    malformed = UsageError(f"git credential request: line {number} has a url= that is not a URL with a protocol")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise malformed from None  # the ValueError's message may quote the url
    if not parts.scheme:
        raise malformed
    userinfo, _, hostport = parts.netloc.rpartition("@")
    fields = {"protocol": parts.scheme, "host": unquote(hostport)}
    if path := unquote(parts.path).lstrip("/"):
        fields["path"] = path
    if userinfo:
        fields["username"] = unquote(userinfo.partition(":")[0])
    if any(char in part for part in fields.values() for char in _UNCARRIABLE):
        raise UsageError(f"git credential request: line {number} has a url= that decodes to a line break or NUL")
    return fields


def format_response(username: str, password: str) -> str:
    """The answer to ``get``. No username line when there is none, so git keeps its own."""
    for name, value in (("username", username), ("password", password)):
        if any(char in value for char in _UNCARRIABLE):
            raise UsageError(f"the {name} contains a line break or NUL, which git's credential protocol cannot carry")
    lines = [f"username={username}"] if username else []
    return "\n".join([*lines, f"password={password}", ""])


def candidate_urls(request: GitRequest) -> list[str]:
    """Keys to look a credential up by, most specific first."""
    base = f"{request.protocol}://{request.host}"
    urls: list[str] = []
    if request.path:
        urls.append(f"{base}/{request.path}")
        if (stem := request.path.removesuffix(".git")) and stem != request.path:
            urls.append(f"{base}/{stem}")
    urls += [base, request.host]
    return list(dict.fromkeys(urls))


def _segments(path: str) -> tuple[str, ...]:
    """Path segments, with ``repo`` and ``repo.git`` the same repository and empty segments dropped."""
    parts = [unquote(part) for part in path.split("/") if part]
    if parts and parts[-1] != ".git":
        parts[-1] = parts[-1].removesuffix(".git")
    return tuple(parts)


def _location(url: str, scheme_for_port: str) -> _Location | None:
    """Split a url, with or without a scheme; None when it is not one (bad port, no host)."""
    text = url.strip()
    has_scheme = bool(_HAS_SCHEME.match(text))
    try:
        parts = urlsplit(text if has_scheme else "//" + text)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    scheme = parts.scheme.lower() if has_scheme else ""
    if port == _DEFAULT_PORTS.get(scheme or scheme_for_port):
        port = None
    return _Location(scheme, unquote(parts.username or ""), parts.hostname, port, _segments(parts.path))


def url_matches(credential_url: str, request: GitRequest) -> int | None:
    """How specifically a stored url covers the request: None for not at all, higher is closer.

    A matching path segment outweighs a stated scheme, which outweighs a stated
    username, so ``github.com/acme`` beats ``https://github.com``.
    """
    if any(char in request.host for char in "@/?#\\"):
        return None  # not a host: never let "evil@github.com" pass as github.com
    stored = _location(credential_url, request.protocol)
    wanted = _location(f"{request.protocol}://{request.host}", request.protocol)
    if stored is None or wanted is None:
        return None
    if stored.scheme and stored.scheme != wanted.scheme:
        return None
    if (stored.hostname, stored.port) != (wanted.hostname, wanted.port):
        return None
    if stored.username and request.username and stored.username != request.username:
        return None
    path = _segments(request.path)
    if path[: len(stored.segments)] != stored.segments:
        return None
    return (len(stored.segments) * 4 + (2 if stored.scheme else 0)
            + (1 if stored.username and stored.username == request.username else 0))


def best_match(credentials: Iterable[tuple[T, str]], request: GitRequest) -> T | None:
    """The one credential whose url covers the request most specifically.

    A tie is an error rather than a guess: handing git the wrong token is worse than
    handing it none.
    """
    best: list[T] = []
    best_score = -1
    for item, url in credentials:
        score = url_matches(url, request)
        if score is None or score < best_score:
            continue
        if score > best_score:
            best, best_score = [], score
        best.append(item)
    if len(best) > 1:
        raise ConflictError(f"several credentials match {candidate_urls(request)[0]}; narrow their url fields")
    return best[0] if best else None


def git_username(credential: Credential, request: GitRequest) -> str:
    """A token usually needs some user name; git hosts accept any for tokens."""
    return credential.fields.get("username") or request.username or "x-access-token"
