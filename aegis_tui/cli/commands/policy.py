"""``policy show|set|hooks|hook-add|hook-remove``: rotation policies and provider hooks.

A credential's policy is sealed in the vault (``show`` and ``set`` unlock it); the hooks
live in ``policy.toml`` (``hooks``, ``hook-add`` and ``hook-remove`` never touch the
vault). Every check runs before anything is written, so bad input changes nothing.
"""

from __future__ import annotations

import argparse
import shlex

from aegis_tui.cli.render import emit, emit_json, table
from aegis_tui.cli.terminal import err
from aegis_tui.cli.unlock import open_unlocked
from aegis_tui.core.errors import ConflictError, UsageError
from aegis_tui.core.lifecycle.policy import (
    Hook,
    RotationPolicy,
    load_policy_file,
    policy_path,
    save_policy_file,
    validate_hook_name,
)
from aegis_tui.core.models import Credential, parse_duration

_DAY = 86400
_UNITS = (("w", 604800), ("d", _DAY), ("h", 3600), ("m", 60), ("s", 1))


def duration_text(seconds: float) -> str:
    """``86400`` -> ``1d``: the largest unit that divides it, as people write ``--overlap``."""
    if seconds and float(seconds).is_integer():
        for unit, size in _UNITS:
            if seconds % size == 0:
                return f"{int(seconds) // size}{unit}"
    return f"{seconds:g}s"


# -- a credential's policy ---------------------------------------------------------------------------
def show(args: argparse.Namespace) -> int:
    with open_unlocked(args) as vault:
        from aegis_tui.core.credentials import Credentials

        credential = Credentials(vault).resolve(args.name)
    summary = _summary(credential)
    if args.json:
        emit_json(summary)
        return 0
    hook = summary["hook"]
    rows = [["credential", credential.name],
            ["period", f"{credential.rotation_days}d" if credential.rotation_days else "none"],
            ["overlap", duration_text(credential.overlap_seconds)],
            ["method", str(summary["method"])]]
    if hook:
        rows.append(["hook", f"{hook} ({'declared in' if summary['hook_declared'] else 'MISSING from'} "
                             f"{summary['policy_file']})"])
    for line in table(["FIELD", "VALUE"], rows).splitlines()[1:]:
        emit(line)
    return 0


def _summary(credential: Credential) -> dict[str, object]:
    """The policy file is read only when the policy names a hook: a broken file must not
    hide the period and method of every other credential."""
    policy = RotationPolicy.from_mapping(credential.rotation_policy)
    return {
        "name": credential.name,
        "rotation_days": credential.rotation_days,
        "overlap_seconds": credential.overlap_seconds,
        "policy": policy.to_dict(),
        "method": policy.describe(),
        "hook": policy.hook or None,
        "hook_declared": policy.hook in load_policy_file().hooks if policy.hook else None,
        "policy_file": policy_path(),
    }


def set_policy(args: argparse.Namespace) -> int:
    changes = _changes(args)
    with open_unlocked(args) as vault:
        from aegis_tui.core.credentials import Credentials

        credentials = Credentials(vault)
        credential = credentials.edit(credentials.resolve(args.name).name, **changes)
    err(f"{credential.name}: rotation {RotationPolicy.from_mapping(credential.rotation_policy).describe()}, "
        f"every {credential.rotation_days or '-'}d, overlap {duration_text(credential.overlap_seconds)}")
    return 0


def _changes(args: argparse.Namespace) -> dict[str, object]:
    """What ``set`` changes, all validated before the vault is opened."""
    changes: dict[str, object] = {}
    if args.every is not None:
        changes["rotation_days"] = _period_days(args.every)
    if args.overlap is not None:
        changes["overlap_seconds"] = parse_duration(args.overlap)
    policy = _requested_policy(args)
    if policy is not None:
        changes["rotation_policy"] = policy.to_dict()
    if not changes:
        raise UsageError("nothing to change: give --every, --overlap, --manual, --generate or --command")
    return changes


def _period_days(raw: str) -> int | None:
    """``90d`` -> 90; ``0`` clears the period; anything not whole days is refused."""
    seconds = parse_duration(raw)
    if seconds % _DAY:
        raise UsageError(f"--every {raw!r} is not a whole number of days, like 90d or 12w")
    return seconds // _DAY or None


def _requested_policy(args: argparse.Namespace) -> RotationPolicy | None:
    generate_options = {key: getattr(args, key) for key in ("length", "charset", "prefix")
                        if getattr(args, key) is not None}
    if generate_options and not args.generate:
        raise UsageError(f"--{', --'.join(generate_options)}: can only be used with --generate")
    if args.generate:
        return RotationPolicy.from_mapping({"method": "generate", **generate_options})
    if args.command is not None:
        load_policy_file().hook(validate_hook_name(args.command))  # refuses a hook not declared
        return RotationPolicy.from_mapping({"method": "command", "hook": args.command})
    return RotationPolicy() if args.manual else None


# -- the hooks of the policy file ----------------------------------------------------------------------
def hooks(args: argparse.Namespace) -> int:
    policy_file = load_policy_file()
    declared = [policy_file.hooks[name] for name in sorted(policy_file.hooks)]
    if args.json:
        emit_json([{"name": hook.name, "rotate": list(hook.rotate), "revoke": list(hook.revoke),
                    "timeout": hook.timeout} for hook in declared])
        return 0
    if not declared:
        err(f"no hooks in {policy_file.path}; add one with: aegis-vault policy hook-add NAME -- COMMAND")
        return 0
    emit(table(["NAME", "ROTATE", "REVOKE", "TIMEOUT"],
               [[hook.name, shlex.join(hook.rotate), shlex.join(hook.revoke) or "-", duration_text(hook.timeout)]
                for hook in declared]))
    return 0


def hook_add(args: argparse.Namespace) -> int:
    policy_file = load_policy_file()
    name = validate_hook_name(args.name)
    if name in policy_file.hooks:
        raise ConflictError(f"a hook named {name!r} already exists; "
                            f"remove it first with: aegis-vault policy hook-remove {name}")
    revoke = _words(args.revoke_command, "--revoke-command") if args.revoke_command is not None else ()
    hook = Hook(name, tuple(args.rotate), revoke, float(parse_duration(args.timeout)))
    save_policy_file(policy_file.with_hook(hook))
    err(f"hook {name} added to {policy_file.path}")
    return 0


def _words(raw: str, option: str) -> tuple[str, ...]:
    """A command given as one shell-like string: split into argv, never run by a shell."""
    try:
        words = tuple(shlex.split(raw))
    except ValueError as error:  # an unclosed quote
        raise UsageError(f"{option}: {error}") from None
    if not words:
        raise UsageError(f"{option} needs a command, like '/path/to/revoke --key-id 7'")
    return words


def hook_remove(args: argparse.Namespace) -> int:
    policy_file = load_policy_file()
    save_policy_file(policy_file.without_hook(args.name))
    err(f"hook {args.name} removed from {policy_file.path}")
    return 0
