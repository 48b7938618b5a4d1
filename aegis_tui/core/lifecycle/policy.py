"""How a credential gets its next value, and the provider hooks that can make one.

A credential's ``rotation_policy`` (sealed with its metadata) says *how* a new value is
made: typed by a human (``manual``), generated locally (``generate``), or obtained from
the provider by a hook command (``command``). The hooks themselves live outside the
vault, in ``$XDG_CONFIG_HOME/aegis-vault/policy.toml``, because they are programs the
user installs and edits, not secrets::

    [hooks.stripe]
    rotate = ["/usr/local/bin/stripe-rotate", "--live"]   # argv, never a shell line
    revoke = ["/usr/local/bin/stripe-revoke"]             # optional
    timeout = "30s"                                       # or a number of seconds

    [compromise]
    auto_rotate = true   # a leaked value of the vault starts recovery on its own

The vault runs what this file names with the old value on stdin, so a file (or folder)
that another user can write is refused: whoever can edit it can read every value a
hook is handed.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from aegis_tui.core.config import config_dir
from aegis_tui.core.errors import UsageError, VaultFileError
from aegis_tui.core.generate import CHARSETS, MAX_LENGTH, MIN_LENGTH, validate_prefix
from aegis_tui.core.models import parse_duration
from aegis_tui.core.paths import write_private_file

POLICY_FILENAME = "policy.toml"
METHODS = ("manual", "generate", "command")
MAX_HOOK_TIMEOUT = 3600.0  # an hour: longer is a hung hook, not a slow provider
HOOK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_POLICY_KEYS = ("method", "length", "charset", "prefix", "hook")
_HOOK_KEYS = ("rotate", "revoke", "timeout")
_COMPROMISE_KEYS = ("auto_rotate",)


def validate_hook_name(raw: object) -> str:
    """Hook names end up in messages, the audit log and TOML keys: keep them plain."""
    if not isinstance(raw, str) or not HOOK_NAME.match(raw):
        raise UsageError("a hook name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return raw


class RotationPolicy(NamedTuple):
    """How the next value of one credential is made (see the module docstring)."""

    method: str = "manual"
    length: int = 32
    charset: str = "alnum"
    prefix: str = ""
    hook: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> RotationPolicy:
        """The policy a stored or typed mapping describes; every flaw is a one-line UsageError."""
        unknown = sorted(set(data) - set(_POLICY_KEYS))
        if unknown:
            raise UsageError(f"rotation policy: unknown key(s) {', '.join(unknown)}; known: {', '.join(_POLICY_KEYS)}")
        policy = cls(**data)  # type: ignore[arg-type]
        if policy.method not in METHODS:
            raise UsageError(f"rotation policy: method must be one of {', '.join(METHODS)}")
        if not isinstance(policy.length, int) or isinstance(policy.length, bool) \
                or not MIN_LENGTH <= policy.length <= MAX_LENGTH:
            raise UsageError(f"rotation policy: length must be a whole number from {MIN_LENGTH} to {MAX_LENGTH}")
        if not isinstance(policy.charset, str) or policy.charset not in CHARSETS:
            raise UsageError(f"rotation policy: unknown character set; choose one of: {', '.join(CHARSETS)}")
        try:
            validate_prefix(policy.prefix)
        except UsageError as error:
            raise UsageError(f"rotation policy: {error}") from None
        if policy.method == "command" and not policy.hook:
            raise UsageError("rotation policy: method command needs the name of a hook")
        if policy.hook:
            validate_hook_name(policy.hook)
        return policy

    def to_dict(self) -> dict[str, object]:
        """Only what the method uses, so a stored policy never carries stale settings."""
        if self.method == "generate":
            return {"method": "generate", "length": self.length, "charset": self.charset, "prefix": self.prefix}
        if self.method == "command":
            return {"method": "command", "hook": self.hook}
        return {"method": "manual"}

    def describe(self) -> str:
        """One short line for people: ``generate 40 alnum, prefix sk_``, ``command hook stripe``."""
        if self.method == "generate":
            return f"generate {self.length} {self.charset}" + (f", prefix {self.prefix}" if self.prefix else "")
        if self.method == "command":
            return f"command hook {self.hook}"
        return "manual"


class Hook(NamedTuple):
    """A provider hook: programs (argv, no shell) that make a new value and revoke an old one."""

    name: str
    rotate: tuple[str, ...]
    revoke: tuple[str, ...] = ()
    timeout: float = 30.0


class PolicyFile(NamedTuple):
    """The contents of ``policy.toml``; immutable, so changes return a new one."""

    hooks: Mapping[str, Hook] = MappingProxyType({})
    auto_recover: bool = True  # [compromise] auto_rotate
    path: str = ""  # where it was read from: named in messages

    def hook(self, name: str) -> Hook:
        try:
            return self.hooks[name]
        except KeyError:
            raise UsageError(f"no hook named {name!r} in {self.path or policy_path()}; "
                             "see: aegis-vault policy hooks") from None

    def with_hook(self, hook: Hook) -> PolicyFile:
        """This policy plus ``hook`` (replacing one of the same name), validated as a file would be."""
        checked = _hook(hook.name, _hook_document(hook), self.path or policy_path())
        return self._replace(hooks=MappingProxyType({**self.hooks, hook.name: checked}))

    def without_hook(self, name: str) -> PolicyFile:
        self.hook(name)  # raises the message for a missing one
        return self._replace(hooks=MappingProxyType({key: h for key, h in self.hooks.items() if key != name}))

    def to_document(self) -> dict[str, Any]:
        """The TOML document: hooks in name order, ``[compromise]`` only when not the default."""
        document: dict[str, Any] = {}
        if self.hooks:
            document["hooks"] = {name: _hook_document(self.hooks[name]) for name in sorted(self.hooks)}
        if not self.auto_recover:
            document["compromise"] = {"auto_rotate": False}
        return document


def policy_path(environ: dict[str, str] | None = None) -> str:
    return os.path.join(config_dir(environ), POLICY_FILENAME)


def load_policy_file(path: str | None = None) -> PolicyFile:
    """The policy file's hooks and settings; an empty policy when there is no file."""
    import tomllib

    path = path or policy_path()
    try:
        with open(path, "rb") as handle:
            _check_not_writable_by_others(path, os.fstat(handle.fileno()))
            _check_not_writable_by_others(os.path.dirname(os.path.abspath(path)))
            data = tomllib.load(handle)
    except FileNotFoundError:
        return PolicyFile(path=path)
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{path} is not valid TOML ({err}); fix or delete it") from None
    return _policy(data, path)


def save_policy_file(policy: PolicyFile, path: str | None = None) -> None:
    """Write atomically (temp file renamed over the old one), 0600 in a 0700 folder."""
    import tomli_w

    path = path or policy.path or policy_path()
    _policy(policy.to_document(), path)  # never write what could not be read back
    data = tomli_w.dumps(policy.to_document()).encode("utf-8")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    _check_not_writable_by_others(folder)
    write_private_file(path, data)


def _check_not_writable_by_others(path: str, info: os.stat_result | None = None) -> None:
    """Refuse what another user could rewrite: the commands named here are run with secrets.

    Unlike the vault file (``paths.check_not_shared``), reading is fine: the policy
    holds no secret, and an editor's usual 0644 must not lock the user out.
    """
    info = info or os.stat(path)
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        raise VaultFileError(f"{path} is writable by group or others (mode {mode:04o}) and names commands the "
                             f"vault runs; fix it with: chmod go-w {path}")
    if info.st_uid not in (os.getuid(), 0):
        raise VaultFileError(f"{path} belongs to another user (uid {info.st_uid}) and names commands the vault "
                             "runs; refusing it")


def _policy(data: Mapping[str, Any], path: str) -> PolicyFile:
    _no_unknown_keys(data, ("hooks", "compromise"), path, "the file")
    hooks = _table(data, "hooks", path)
    compromise = _table(data, "compromise", path)
    _no_unknown_keys(compromise, _COMPROMISE_KEYS, path, "[compromise]")
    auto_recover = compromise.get("auto_rotate", True)
    if not isinstance(auto_recover, bool):
        raise UsageError(f"{path}: [compromise] auto_rotate must be true or false")
    parsed = {name: _hook(name, table, path) for name, table in hooks.items()}
    return PolicyFile(MappingProxyType(parsed), auto_recover, path)


def _table(data: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise UsageError(f"{path}: {key} must be a table, [{key}]")
    return table


def _no_unknown_keys(table: Mapping[str, Any], known: tuple[str, ...], path: str, where: str) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise UsageError(f"{path}: unknown key(s) in {where}: {', '.join(unknown)}; known: {', '.join(known)}")


def _hook(name: str, table: object, path: str) -> Hook:
    where = f"[hooks.{name}]"
    try:
        validate_hook_name(name)
    except UsageError as err:
        raise UsageError(f"{path}: {where}: {err}") from None
    if not isinstance(table, dict):
        raise UsageError(f"{path}: {where} must be a table")
    _no_unknown_keys(table, _HOOK_KEYS, path, where)
    if "rotate" not in table:
        raise UsageError(f'{path}: {where} needs rotate = ["/path/to/command", "arg", ...]')
    return Hook(name, _argv(table["rotate"], f"{path}: {where} rotate"),
                _argv(table["revoke"], f"{path}: {where} revoke") if "revoke" in table else (),
                _timeout(table.get("timeout", Hook._field_defaults["timeout"]), f"{path}: {where} timeout"))


def _argv(raw: object, where: str) -> tuple[str, ...]:
    if not isinstance(raw, (list, tuple)) or not raw or not all(isinstance(arg, str) and arg for arg in raw) \
            or any("\0" in arg for arg in raw):
        raise UsageError(f'{where} must be a command as a list of non-empty strings, like ["/path/cmd", "arg"]')
    return tuple(raw)


def _timeout(raw: object, where: str) -> float:
    """A duration (``"30s"``, ``"2m"``) or a number of seconds, above 0 and at most an hour."""
    try:
        seconds = float(parse_duration(raw)) if isinstance(raw, str) else raw
    except UsageError as err:
        raise UsageError(f"{where}: {err}") from None
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) \
            or not 0 < seconds <= MAX_HOOK_TIMEOUT:
        raise UsageError(f"{where} must be more than 0 and at most {MAX_HOOK_TIMEOUT:g} seconds, like \"30s\"")
    return float(seconds)


def _hook_document(hook: Hook) -> dict[str, Any]:
    """A hook as its TOML table; a whole-second timeout is written the way people write it."""
    table: dict[str, Any] = {"rotate": list(hook.rotate)}
    if hook.revoke:
        table["revoke"] = list(hook.revoke)
    table["timeout"] = f"{int(hook.timeout)}s" if float(hook.timeout).is_integer() else hook.timeout
    return table
