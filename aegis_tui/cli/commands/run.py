"""``aegis-vault run`` and ``aegis-vault project init``: inject credentials into one
command, and mask them in everything it prints."""

from __future__ import annotations

import os

from aegis_tui.cli.terminal import err
from aegis_tui.cli.unlock import open_agent_access
from aegis_tui.core.errors import AegisError, UsageError
from aegis_tui.core.run.environment import (
    Need,
    merge_needs,
    parse_need,
    read_env_template,
    references_in,
    validate_env_name,
)
from aegis_tui.core.paths import ENV_KEY_VARIABLE
from aegis_tui.core.run.project import Project, find_project, load_project, write_project

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing or argparse
if TYPE_CHECKING:
    import argparse

    from aegis_tui.core.access import AgentAccess

_NEVER_INHERITED = (ENV_KEY_VARIABLE,)  # the child must not be able to unlock the vault itself


def _command(raw: list[str]) -> list[str]:
    command = raw[1:] if raw[:1] == ["--"] else raw
    if not command:
        raise UsageError("give the command to run after --, e.g. aegis-vault run --need github -- git push")
    return command


def _needs(args: argparse.Namespace) -> tuple[dict[str, str], list[Need], Project | None]:
    project_path = find_project(os.getcwd())
    project = load_project(project_path) if project_path else None
    plain, from_file = read_env_template(args.env_file) if args.env_file else ({}, [])
    needs = merge_needs(project.needs() if project else [], from_file, references_in(os.environ, "the environment"),
                        [parse_need(raw) for raw in args.need])
    return plain, needs, project


def run(args: argparse.Namespace) -> int:
    from aegis_tui.core.run.child import exit_status, find_program, run_child, should_use_pty

    command = _command(args.command)
    plain, needs, project = _needs(args)
    env = {key: value for key, value in os.environ.items() if key not in _NEVER_INHERITED}
    env.update(plain)
    program = find_program(command[0], env)
    access = open_agent_access(args)
    try:
        if access.sandboxed:
            return _run_by_broker(access, args, command, program, needs, project, env)
        access.hold_values()  # from here on it holds values: unreadable to the user's other processes, no core
        used: list[str] = []
        for need in needs:
            # A project file's references resolve inside its context: one planted with
            # another context's name must not pull that credential in unasked.
            project_context = project.context if project is not None and need.source == project.path else None
            try:
                name, value = access.inject(need.reference, command, program, reason=args.reason,
                                            project_context=project_context)
            except AegisError as error:
                raise type(error)(f"{need.variable} (from {need.source}): {error}") from None
            raw = value.reveal()
            if b"\x00" in raw:
                raise UsageError(f"{need.variable}: credential {name!r} holds a NUL byte, which an environment "
                                 "variable cannot carry")
            env[need.variable] = raw.decode("utf-8", "surrogateescape")
            used.append(name)
        result = run_child(command, env, filters=access.output_filters(), use_pty=should_use_pty(), program=program)
        hits = access.masked_hits()
        access.report_run(os.path.basename(command[0]), used, result.duration, result.exit_code, result.signal, hits)
    finally:
        access.close()
    if hits:
        err(f"aegis-vault: masked {sum(hits.values())} occurrence(s) of secret values in the output")
    return exit_status(result)


def _run_by_broker(access: AgentAccess, args: argparse.Namespace, command: list[str], program: str,
                   needs: list[Need], project: Project | None, env: dict[str, str]) -> int:
    """Inside a sandboxed session: the broker checks the needs and starts the command
    outside the sandbox with our stdin, stdout and stderr; no value ever reaches this
    process. We exit as the command did."""
    from aegis_tui.core.run.child import ChildResult, exit_status

    wanted = {need.variable: need.reference for need in needs}
    contexts = {need.variable: project.context for need in needs
                if project is not None and need.source == project.path}
    answer = access.start_run(wanted, contexts, command, program, os.getcwd(), args.reason or "", env)
    access.close()
    hits = answer.get("masked") or {}
    if hits:
        err(f"aegis-vault: masked {sum(hits.values())} occurrence(s) of secret values in the output")
    return exit_status(ChildResult(answer.get("exit_code"), answer.get("signal"), float(answer.get("duration") or 0)))


def project_init(args: argparse.Namespace) -> int:
    env: dict[str, str] = {}
    for raw in args.env:
        variable, sep, target = raw.partition("=")
        if not sep or not target:
            raise UsageError("--env takes VARIABLE=NAME, e.g. --env GITHUB_TOKEN=github-pat-ci")
        env[validate_env_name(variable)] = target
    path = write_project(os.getcwd(), args.context, env, force=args.force)
    err(f"aegis-vault: wrote {path} (names only, no values: safe to commit)")
    return 0
