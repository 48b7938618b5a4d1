"""Reading ``.env`` files: the format people keep their secrets in today.

Supports what dotenv tools commonly accept: ``KEY=value``, ``export KEY=value``,
comments, single quotes (literal), double quotes (with ``\\n``-style escapes) and
unquoted values with trailing `` # comments``. Errors name the line, never its value.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from aegis_tui.core.errors import UsageError

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}
_SECRET_HINT = re.compile(
    r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|PWD|AUTH|CREDENTIAL|PRIVATE|DSN|SIGNATURE|SALT|COOKIE|SESSION)",
    re.IGNORECASE,
)
_URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"^(<[^>]*>|\$\{[^}]*\}|x{3,}|changeme|todo|your[-_ ].*|\*+)$", re.IGNORECASE)


class EnvEntry(NamedTuple):
    key: str
    value: str
    line: int

    @property
    def looks_secret(self) -> bool:
        return bool(_SECRET_HINT.search(self.key) or _URL_WITH_PASSWORD.match(self.value))

    @property
    def is_placeholder(self) -> bool:
        return not self.value or bool(_PLACEHOLDER.match(self.value.strip()))


def parse_env(text: str) -> list[EnvEntry]:
    entries: list[EnvEntry] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise UsageError(f"line {number} is not KEY=VALUE")
        if key in seen:
            raise UsageError(f"line {number}: {key} is defined twice")
        seen.add(key)
        entries.append(EnvEntry(key, _parse_value(rest.strip(), number), number))
    return entries


def _parse_value(rest: str, number: int) -> str:
    if rest[:1] == "'":
        end = rest.find("'", 1)
        if end < 0:
            raise UsageError(f"line {number}: unterminated single quote")
        return rest[1:end]
    if rest[:1] == '"':
        out, index = [], 1
        while index < len(rest):
            ch = rest[index]
            if ch == "\\" and index + 1 < len(rest):
                out.append(_ESCAPES.get(rest[index + 1], "\\" + rest[index + 1]))
                index += 2
                continue
            if ch == '"':
                return "".join(out)
            out.append(ch)
            index += 1
        raise UsageError(f"line {number}: unterminated double quote")
    comment = re.search(r"\s#", rest)
    return (rest[: comment.start()] if comment else rest).strip()


def guess_kind(entry: EnvEntry) -> str:
    key = entry.key.upper()
    if _URL_WITH_PASSWORD.match(entry.value) or key.endswith(("DSN", "DATABASE_URL", "REDIS_URL")):
        return "connection_string"
    if "PASSWORD" in key or "PASSWD" in key or key.endswith(("_PASS", "_PWD")):
        return "password"
    if "TOKEN" in key:
        return "access_token"
    if "PRIVATE_KEY" in key:
        return "ssh_key" if "SSH" in key else "secret"
    if key.endswith("KEY") or "API_KEY" in key:
        return "api_key"
    return "secret"
