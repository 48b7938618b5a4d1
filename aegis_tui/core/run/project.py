"""``.aegis.toml``: a project's context and the credentials its commands need.

    context = "acme/dev"

    [env]
    GITHUB_TOKEN = "github-pat-ci"            # a name, looked up in the project's context
    DATABASE_URL = "aegis://acme/dev/app-db"  # or a full reference

Found in the working folder or the nearest parent (like ``.git``), read with
``tomllib``; ``aegis-vault project init`` writes it with ``tomli-w``. It holds names,
never values, so it is meant to be committed.
"""

from __future__ import annotations

import os

from aegis_tui.core.errors import UsageError
from aegis_tui.core.run.environment import REFERENCE_PREFIX, Need, validate_env_name

PROJECT_FILE = ".aegis.toml"


class Project:
    """A loaded ``.aegis.toml``. A plain class (no ``typing`` import): ``run`` imports this."""

    __slots__ = ("path", "context", "env")

    def __init__(self, path: str, context: str, env: dict[str, str]) -> None:
        self.path = path
        self.context = context
        self.env = env  # variable -> reference

    def needs(self) -> list[Need]:
        return [Need(variable, self.reference(target), self.path) for variable, target in self.env.items()]

    def reference(self, target: str) -> str:
        if target.startswith(REFERENCE_PREFIX) or not self.context:
            return target if target.startswith(REFERENCE_PREFIX) else REFERENCE_PREFIX + target
        return f"{REFERENCE_PREFIX}{self.context}/{target}"


def find_project(start: str) -> str | None:
    folder = os.path.abspath(start)
    while True:
        candidate = os.path.join(folder, PROJECT_FILE)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def load_project(path: str) -> Project:
    import tomllib

    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path} is not valid TOML ({error})") from None
    unknown = set(data) - {"context", "env"}
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; expected context and [env]")
    context = data.get("context", "")
    env = data.get("env", {})
    if not isinstance(context, str) or not isinstance(env, dict) or not all(
            isinstance(value, str) for value in env.values()):
        raise UsageError(f"{path}: context is a string and [env] maps variable names to credential names")
    from aegis_tui.core.models import validate_context

    try:
        validate_context(context)
        for variable in env:
            validate_env_name(variable)
    except UsageError as error:
        raise UsageError(f"{path}: {error}") from None
    return Project(path, context, dict(env))


def write_project(folder: str, context: str, env: dict[str, str], *, force: bool = False) -> str:
    import tomli_w

    from aegis_tui.core.models import validate_context

    path = os.path.join(folder, PROJECT_FILE)
    if os.path.exists(path) and not force:
        raise UsageError(f"{path} exists; use --force to replace it")
    document = {"context": validate_context(context),
                "env": {validate_env_name(variable): target for variable, target in env.items()}}
    with open(path, "wb") as handle:
        tomli_w.dump(document, handle)
    return path
