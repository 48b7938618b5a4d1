"""What the agent's sandbox hides, what it makes read-only, and why.

A plan is data (``SandboxPlan``), made once by ``session exec`` from the vault's
location, the project folder, the environment and the user's rules, and applied by
``bwrap.bwrap_argv``. It travels to the broker too (``to_dict``/``from_dict``): each
``run`` child gets a sibling sandbox with the same view, so files it writes land where
the agent expects them.

Always hidden (no rule can take them back): the vault's folder (and the default vault
folder, when another vault is in use: inside, the default location is where
``aegis-vault`` would look first), aegis-vault's config folder (with these rules), the
broker's runtime folder (the owner socket, lock files, other sessions' sockets) and the
D-Bus session bus (the OS keyring answers there). Hidden by default, and given back with
``allow``: common secret places in the home, SSH private keys (not the ssh-agent
socket: agents push over SSH) and ``.env*`` files in the project. Read-only: the
installed aegis-vault, so an agent cannot change the code the next unlock runs.

Only paths that exist are planned, each by its real path: hiding a symlink's target
hides what it points to under every name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from aegis_tui.core.errors import UsageError

NETWORKS = ("host", "none")
BUS_NOTE = ("a D-Bus bus on an abstract socket (unix:abstract=...) has no file to hide; "
            "only --network none (a network namespace of its own) cuts it")

# Default hidden places in the home, and why.
HOME_SECRETS = (
    (".aws", "AWS credentials"),
    (".config/gh", "GitHub CLI tokens"),
    (".netrc", "passwords for hosts (curl, git, ftp)"),
    (".docker/config.json", "registry credentials"),
    (".secure", "a conventional place for secrets"),
)
ENV_FILE_KEPT = (".env.example", ".env.sample", ".env.template")
PROJECT_SKIPPED = (".git", "node_modules", "__pycache__")
SSH_PUBLIC = ("known_hosts", "known_hosts.old", "config", "authorized_keys", "environment")


@dataclass(frozen=True)
class SandboxPlan:
    """``hidden``: (absolute path, why): an empty tmpfs over a folder, ``/dev/null`` over
    anything else. ``read_only``: (absolute path, why): bound read-only. ``network``:
    "host" or "none". ``session_socket``: the host path of the session's own socket,
    bound inside at the broker's usual place."""

    hidden: tuple[tuple[str, str], ...]
    read_only: tuple[tuple[str, str], ...]
    network: str
    session_socket: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"hidden": [list(entry) for entry in self.hidden],
                "read_only": [list(entry) for entry in self.read_only],
                "network": self.network, "session_socket": self.session_socket}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxPlan:
        """A plan from the wire; anything malformed is a ``UsageError``: a plan decides
        what a sandbox shows, so it is checked as untrusted input."""
        if not isinstance(data, dict):
            raise UsageError("a sandbox plan is an object")
        network = data.get("network")
        if network not in NETWORKS:
            raise UsageError(f"a sandbox plan's network is one of {', '.join(NETWORKS)}")
        socket = data.get("session_socket")
        if socket is not None:
            _check_path(socket, "session_socket")
        return cls(_entries(data.get("hidden"), "hidden"), _entries(data.get("read_only"), "read_only"),
                   network, socket)

    def with_session_socket(self, path: str) -> SandboxPlan:
        _check_path(path, "session_socket")
        return replace(self, session_socket=path)


def _entries(raw: Any, name: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list):
        raise UsageError(f"a sandbox plan's {name} is a list of [path, why]")
    entries = []
    for entry in raw:
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[1], str)):
            raise UsageError(f"a sandbox plan's {name} is a list of [path, why]")
        _check_path(entry[0], name)
        entries.append((entry[0], entry[1]))
    return tuple(entries)


def _check_path(path: Any, name: str) -> None:
    if not isinstance(path, str) or not os.path.isabs(path) or "\0" in path or os.path.normpath(path) != path:
        raise UsageError(f"a sandbox plan's {name} holds a path that is not absolute and normal")


def sandbox_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The agent's environment: no ``AEGIS_*`` (the key, a session token, the vault's
    place: the session socket says which session it is) and no D-Bus address (the bus is
    hidden; a client would only wait on it)."""
    return {key: value for key, value in environ.items()
            if not key.startswith("AEGIS_") and key != "DBUS_SESSION_BUS_ADDRESS"}


def plan_sandbox(*, vault_path: str, project_dir: str, network: str = "host", rules_path: str | None = None,
                 environ: Mapping[str, str] | None = None) -> SandboxPlan:
    """The plan for an agent working in ``project_dir`` on the vault at ``vault_path``.
    A bad rules file raises ``UsageError`` (one line naming it)."""
    from aegis_tui.core.config import config_dir
    from aegis_tui.core.sandbox.rules import RULES_FILENAME, load_rules

    if network not in NETWORKS:
        raise UsageError(f"--network is one of {', '.join(NETWORKS)}")
    env = dict(os.environ if environ is None else environ)
    home = env.get("HOME") or os.path.expanduser("~")
    config = config_dir(env)
    rules = load_rules(rules_path or os.path.join(config, RULES_FILENAME), home)
    always = _always_hidden(vault_path, config, env)
    defaults = [(path, why) for path, why in _default_hidden(home, project_dir)
                if not any(_within(path, _real(allowed)) for allowed in rules.allow)]
    extra = [(path, "hidden by your rules (sandbox.toml)") for path in rules.hide]
    read_only = _installed_code() + [(path, "read-only by your rules (sandbox.toml)") for path in rules.read_only]
    return SandboxPlan(_existing(always + defaults + extra), _existing(read_only), network)


def _always_hidden(vault_path: str, config: str, env: dict[str, str]) -> list[tuple[str, str]]:
    from aegis_tui.core.broker.runtime import runtime_dir
    from aegis_tui.core.paths import vault_home

    vault_folder = os.path.dirname(os.path.abspath(vault_path))
    found = [(vault_folder, "the vault's folder: the encrypted vault file and its companions"),
             (vault_home({k: v for k, v in env.items() if k != "AEGIS_VAULT_HOME"}),
              "the default vault folder: another vault, where aegis-vault looks first"),
             (config, "aegis-vault's config folder: settings and these sandbox rules"),
             (runtime_dir(create=False),
              "the broker's folder: the owner socket and other sessions' sockets (only this session's is put back)")]
    bus = _bus_socket(env.get("DBUS_SESSION_BUS_ADDRESS", ""))
    if bus:
        found.append((bus, "the D-Bus session bus: the OS keyring (Secret Service) answers there"))
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        found.append((os.path.join(runtime, "bus"), "the D-Bus session bus: the OS keyring (Secret Service) answers there"))
        found.append((os.path.join(runtime, "keyring"), "gnome-keyring's control socket"))
    return found


def _bus_socket(address: str) -> str | None:
    """The socket path of the first ``unix:path=`` entry in a D-Bus address."""
    for entry in address.split(";"):
        kind, _, params = entry.partition(":")
        if kind == "unix":
            for param in params.split(","):
                key, _, value = param.partition("=")
                if key == "path" and value:
                    return value
    return None


def _default_hidden(home: str, project_dir: str) -> list[tuple[str, str]]:
    found = [(os.path.join(home, relative), why) for relative, why in HOME_SECRETS]
    found += [(path, "an SSH private key (the ssh-agent socket stays)") for path in _ssh_private_keys(home)]
    found += [(path, "a .env file in the project: values an agent should get through aegis-vault run")
              for path in _env_files(project_dir)]
    return found


def _ssh_private_keys(home: str) -> list[str]:
    """Files in ``~/.ssh`` with a matching ``.pub``, or named ``id_*`` without ``.pub``."""
    folder = os.path.join(home, ".ssh")
    try:
        names = set(os.listdir(folder))
    except OSError:
        return []
    return sorted(os.path.join(folder, name) for name in names
                  if not name.endswith(".pub") and name not in SSH_PUBLIC
                  and (name + ".pub" in names or name.startswith("id_"))
                  and os.path.isfile(os.path.join(folder, name)))


def _env_files(project_dir: str) -> list[str]:
    """``.env*`` files anywhere under the project, but for examples meant to be shared.
    Virtualenvs (a ``pyvenv.cfg``) are installed code, not the project's settings, and
    walking one costs tens of milliseconds on every ``session exec``: skipped."""
    found = []
    for folder, folders, files in os.walk(project_dir):
        if "pyvenv.cfg" in files and folder != project_dir:
            folders[:] = []
            continue
        folders[:] = [name for name in folders if name not in PROJECT_SKIPPED]
        found += [os.path.join(folder, name) for name in files
                  if name.startswith(".env") and name not in ENV_FILE_KEPT]
    return sorted(found)


def _installed_code() -> list[tuple[str, str]]:
    import aegis_tui

    found = [(os.path.dirname(os.path.abspath(aegis_tui.__file__)),
              "aegis-vault's code: an agent must not change what the next unlock runs")]
    if sys.prefix != sys.base_prefix:
        found.append((sys.prefix, "the virtualenv aegis-vault runs from (its interpreter, libraries and scripts)"))
    return found


def _existing(entries: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Entries whose path exists, by real path, each path once (the first reason wins)."""
    seen: dict[str, str] = {}
    for path, why in entries:
        if os.path.lexists(path):
            seen.setdefault(_real(path), why)
    return tuple(seen.items())


def _real(path: str) -> str:
    return os.path.realpath(path)


def _within(path: str, folder: str) -> bool:
    real = _real(path)
    return real == folder or real.startswith(folder.rstrip("/") + "/")
