"""Which credentials a command needs, and under which environment variable names.

Like ``op run``: references (``aegis://context/name``) may sit in the environment
itself, in an env template file (``KEY=aegis://...`` beside plain ``KEY=value`` lines),
in the project's ``.aegis.toml``, or be named with ``--need NAME[=ENV]``. Later
sources override earlier ones for the same variable: project file, env file,
environment, ``--need``. Only references are resolved; plain values pass unchanged.
"""

from __future__ import annotations

from aegis_tui.core.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing: ``run`` imports this module
if TYPE_CHECKING:
    from collections.abc import Mapping

REFERENCE_PREFIX = "aegis://"


class Need:
    """One variable to fill from one reference. A plain class rather than a
    ``typing.NamedTuple``, and no ``re`` below: this module is on every ``run``'s path."""

    __slots__ = ("variable", "reference", "source")

    def __init__(self, variable: str, reference: str, source: str) -> None:
        self.variable = variable
        self.reference = reference
        self.source = source  # where it was asked for, for error messages

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Need) and (self.variable, self.reference, self.source) == (
            other.variable, other.reference, other.source)

    def __hash__(self) -> int:
        return hash((self.variable, self.reference, self.source))

    def __repr__(self) -> str:
        return f"Need({self.variable!r}, {self.reference!r}, {self.source!r})"


def is_env_name(raw: str) -> bool:
    """``[A-Za-z_][A-Za-z0-9_]*``: ASCII letters, digits and ``_``, not starting with a digit."""
    return raw.isascii() and raw.isidentifier()


def env_name_for(reference: str) -> str:
    """``aegis://acme/dev/github-pat`` -> ``GITHUB_PAT``."""
    base = reference.removeprefix(REFERENCE_PREFIX).rsplit("/", 1)[-1]
    # Each run of characters other than ASCII letters and digits becomes one "_" (no
    # ``re``: ~1.5 ms of the ``run`` this module serves).
    name = "_".join("".join(c if c.isascii() and c.isalnum() else " " for c in base).split()).upper()
    if not name:
        raise UsageError(f"cannot make an environment variable name from {reference!r}; use --need NAME=ENV")
    return name if not name[0].isdigit() else "_" + name


def validate_env_name(raw: str) -> str:
    if not is_env_name(raw):
        raise UsageError(f"{raw!r} is not an environment variable name (letters, digits, _; not starting with a digit)")
    return raw


def parse_need(raw: str) -> Need:
    """``--need NAME`` or ``--need NAME=ENV``."""
    reference, sep, variable = raw.rpartition("=") if "=" in raw else (raw, "", "")
    if not reference:
        raise UsageError("--need takes NAME or NAME=ENV")
    return Need(validate_env_name(variable) if sep else env_name_for(reference), reference, "--need")


def references_in(environ: Mapping[str, str], source: str) -> list[Need]:
    return [Need(key, value, source) for key, value in environ.items() if value.startswith(REFERENCE_PREFIX)]


def read_env_template(path: str) -> tuple[dict[str, str], list[Need]]:
    """(plain variables, references) of an env template file."""
    from aegis_tui.core.envfile import parse_env

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(1024 * 1024 + 1)
    except OSError as error:
        raise UsageError(f"cannot read the env file {path}: {error.strerror}") from None
    if len(text) > 1024 * 1024:
        raise UsageError(f"the env file {path} is larger than 1 MiB")
    try:
        entries = parse_env(text)
    except UsageError as error:
        raise UsageError(f"{path}: {error}") from None
    plain = {e.key: e.value for e in entries if not e.value.startswith(REFERENCE_PREFIX)}
    needs = [Need(e.key, e.value, f"{path}:{e.line}") for e in entries if e.value.startswith(REFERENCE_PREFIX)]
    return plain, needs


def merge_needs(*groups: list[Need]) -> list[Need]:
    """One reference per variable; a later group wins."""
    chosen: dict[str, Need] = {}
    for group in groups:
        for need in group:
            chosen[need.variable] = need
    return list(chosen.values())
