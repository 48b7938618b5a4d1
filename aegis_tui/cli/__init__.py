"""The ``aegis-vault`` command line: parse, run one handler, turn errors into one line.

Kept light on purpose: agents call it in loops. Nothing here imports Textual, Rich or
keyring; each handler module imports what its command needs.
"""

import sys  # and no ``from __future__ import annotations``: ~0.1 ms on every call

_SECRET_FLAGS = ("--value", "--secret", "--password", "--passphrase", "--token", "--key")


def refused_secret_flag(argv: list[str]) -> str | None:
    """The first ``--value``-style argument, if any, so it can be refused by name."""
    for arg in argv:
        if arg == "--":
            return None
        flag = arg.split("=", 1)[0]
        if flag in _SECRET_FLAGS:
            return flag
    return None


def undecodable_argument(argv: list[str]) -> int | None:
    """The 1-based position of the first argument holding undecodable bytes, if any.

    Python hands bytes that are not valid in the file system encoding (UTF-8) over as
    lone surrogates (surrogateescape), which no text encoding accepts. They cannot be a
    name, be stored, audited, sent to the broker or shown in a pop-up, and left alone
    they surface far away as an "unexpected error (UnicodeEncodeError)"."""
    for position, arg in enumerate(argv, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return position
    return None


def refused_undecodable(argv: list[str], program: str) -> bool:
    """Write the one line that refuses an undecodable argument; ``True`` if there was one.
    The argument itself is not echoed: it may be a secret typed in the wrong place."""
    position = undecodable_argument(argv)
    if position is None:
        return False
    sys.stderr.write(
        f"{program}: argument {position} is not valid UTF-8 text (it holds undecodable bytes); "
        "names, options, paths and commands must be UTF-8\n"
    )
    return True


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args_list
    flag = refused_secret_flag(args_list)
    if flag is not None:
        sys.stderr.write(
            f"aegis-vault: {flag} is refused: a secret on the command line ends up in shell history "
            "and the process list; pipe it on stdin or type it at the hidden prompt\n"
        )
        return 2
    if refused_undecodable(args_list, "aegis-vault"):
        return 2
    try:
        return _dispatch(args_list)
    except KeyboardInterrupt:
        sys.stderr.write("aegis-vault: interrupted; nothing was changed\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as error:
        if debug:
            raise
        return _report(error)


def _dispatch(args_list: list[str]) -> int:
    if len(args_list) == 2 and args_list[0] == "get" and not args_list[1].startswith("-"):
        # The call agents make in loops: straight to a running broker, no parser.
        from aegis_tui.cli.fast_get import get_through_broker

        code = get_through_broker(args_list[1])
        if code is not None:
            return code
    from aegis_tui.core.paths import take_env_key

    take_env_key()  # nothing this command starts (git, hooks, the child of run) inherits the key
    if args_list[:1] == ["run"]:
        quick = quick_run_args(args_list)
        if quick is not None:
            from aegis_tui.cli.commands.run import run

            return int(run(quick) or 0)  # type: ignore[arg-type]
    from importlib import import_module

    from aegis_tui.cli.parser import build_parser

    args = build_parser(args_list).parse_args(args_list)
    module_name, function_name = args.handler.split(":")
    return int(getattr(import_module(module_name), function_name)(args) or 0)


class Arguments:
    """What ``argparse.Namespace`` is to a handler (attributes), without argparse."""

    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"Arguments({self.__dict__!r})"


_RUN_OPTIONS = {"--need": "need", "--reason": "reason", "--env-file": "env_file"}


def quick_run_args(args_list: list[str]) -> Arguments | None:
    """``run [--need NAME]... [--reason TEXT] [--env-file FILE] -- COMMAND...`` read
    without the parser, as the parser reads it (a test compares them on many argvs);
    ``None`` for anything else, which the parser then reads (and explains).

    ``run`` wraps every command an agent runs, so it is the other hot path: argparse,
    with ``re``, ``gettext`` and ``locale``, and building the grammar of every command,
    cost ~9 ms of a ~40 ms ``run -- true`` (docs/benchmarks.md)."""
    values: dict[str, object] = {"debug": False, "passphrase_fd": None, "recovery": False,
                                 "handler": "aegis_tui.cli.commands.run:run", "need": [], "env_file": None,
                                 "reason": ""}
    index = 1
    while index < len(args_list) and args_list[index] != "--":
        option, equals, value = args_list[index].partition("=")
        if option not in _RUN_OPTIONS:
            return None
        if not equals:
            index += 1
            if index >= len(args_list) or args_list[index].startswith("-"):
                return None
            value = args_list[index]
        if option == "--need":
            values["need"].append(value)  # type: ignore[attr-defined]
        else:
            values[_RUN_OPTIONS[option]] = value
        index += 1
    if index + 1 >= len(args_list):
        return None  # no command: the parser's message, and run's
    values["command"] = args_list[index:]
    return Arguments(**values)


def _report(error: Exception) -> int:
    """One line on stderr, the documented exit code, no traceback, no secret."""
    import sqlite3

    from aegis_tui.core.errors import AegisError

    if isinstance(error, AegisError):
        message, code = str(error), error.exit_code
    elif isinstance(error, sqlite3.DatabaseError):
        message, code = f"the vault file is damaged or unreadable ({type(error).__name__})", 5
    elif isinstance(error, OSError):
        message, code = f"{error.strerror or type(error).__name__}: {error.filename or ''}".rstrip(": "), 1
    else:
        message, code = f"unexpected error ({type(error).__name__}); rerun with --debug for details", 1
    sys.stderr.write(f"aegis-vault: {message}\n")
    return code
