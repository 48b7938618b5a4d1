"""The argument grammar of ``aegis-vault``.

Handlers are named as ``module:function`` strings and imported only for the command
that runs, so ``aegis-vault get`` never pays for what ``audit export`` needs. No option
takes a secret value: values come from a hidden prompt or stdin (see ``terminal.py``).
"""

from __future__ import annotations

import argparse
import os
import re
from typing import TYPE_CHECKING, NoReturn

from aegis_tui import __version__
from aegis_tui.core.errors import EXIT_CODES


_EPILOG = "exit codes:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items()) + (
    "\n\nSecret values are never taken as arguments: pipe them on stdin or type them at the"
    "\nhidden prompt. Unlock order: --recovery, AEGIS_VAULT_KEY, --passphrase-fd, the OS"
    "\nkeyring, a passphrase prompt."
)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse builds a formatter for every ``add_argument`` (to check it), and each one
    imports ``shutil`` and asks the terminal for its width: ~5 ms of a ``get`` that
    prints no help. ``$COLUMNS`` (or 100) is plenty for help text."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        columns = os.environ.get("COLUMNS", "")
        super().__init__(prog, indent_increment, max_help_position,
                         width or (int(columns) - 2 if columns.isdigit() else 98))


class _Parser(argparse.ArgumentParser):
    """Errors never echo unexpected arguments: a stray argument may well be a secret."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments"):
            message = "unexpected extra arguments (not shown, in case they are secrets)"
        else:  # "invalid choice: 'ghp_...'" would echo a secret typed in the wrong place
            message = re.sub(r"(invalid choice|invalid \w+ value): .*?(?= \(choose from|$)",
                             r"\1 (not shown, in case it is a secret)", message, flags=re.S)
        self.exit(2, f"aegis-vault: {message}; see: {self.prog} --help\n")


def _handler(sub: argparse.ArgumentParser, target: str) -> None:
    sub.set_defaults(handler=target)


_CREDS = "aegis_tui.cli.commands.credentials"
_VAULT = "aegis_tui.cli.commands.vault"
_AUDIT = "aegis_tui.cli.commands.audit"
if TYPE_CHECKING:
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]


def _init(commands: Commands) -> None:
    init = commands.add_parser("init", help="create a new vault")
    init.add_argument("--passphrase-stdin", action="store_true", help="read the new passphrase from stdin")
    init.add_argument("--no-passphrase", action="store_true",
                      help="no passphrase slot (needs AEGIS_VAULT_KEY or --keyring)")
    init.add_argument("--keyring", action="store_true", help="also add an OS keyring slot")
    _handler(init, f"{_VAULT}:init")


def _add(commands: Commands) -> None:
    add = commands.add_parser("add", help="add a credential (value from stdin or a hidden prompt)")
    add.add_argument("name")
    _metadata_options(add)
    _generate_options(add)
    _handler(add, f"{_CREDS}:add")


def _get(commands: Commands) -> None:
    get = commands.add_parser("get", help="print a credential's value, and nothing else")
    get.add_argument("name", help="NAME, CONTEXT/NAME or aegis://CONTEXT/NAME")
    get.add_argument("--version", type=int, dest="value_version", metavar="N", help="a specific version")
    get.add_argument("--retired", action="store_true",
                     help="with --version: read a retired version on purpose (history; audited as high risk)")
    get.add_argument("--reason", default="", help="why, shown to the human who approves (through a broker)")
    _handler(get, "aegis_tui.cli.commands.get:get")


def _list(commands: Commands) -> None:
    listing = commands.add_parser("list", help="list credentials (never values)")
    listing.add_argument("--context")
    listing.add_argument("--service")
    listing.add_argument("--status", choices=["active", "revoked", "exposed"])
    listing.add_argument("--kind")
    listing.add_argument("--json", action="store_true")
    _handler(listing, f"{_CREDS}:list_credentials")


def _show(commands: Commands) -> None:
    show = commands.add_parser("show", help="a credential's metadata (never its value)")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    _handler(show, f"{_CREDS}:show")


def _rotate(commands: Commands) -> None:
    rotate = commands.add_parser("rotate", help="give a credential a new value (a new version)")
    rotate.add_argument("name", nargs="?")
    rotate.add_argument("--due", action="store_true",
                        help="instead of one NAME: rotate every due or overdue credential by its rotation policy")
    rotate.add_argument("--overlap", metavar="DURATION",
                        help="how long the previous version stays valid (e.g. 30m, 24h, 7d, 0)")
    _generate_options(rotate)
    _handler(rotate, f"{_CREDS}:rotate")


_LIFECYCLE = "aegis_tui.cli.commands.lifecycle"


def _rotation(commands: Commands) -> None:
    rotation = commands.add_parser("rotation", help="rotation schedule: what is ok, due or overdue")
    actions = rotation.add_subparsers(dest="rotation_command", metavar="ACTION", required=True, parser_class=_Parser)
    status = actions.add_parser("status", help="every credential with a rotation period or expiry, most urgent first")
    status.add_argument("--attention", action="store_true", help="only what is due, overdue or expiring")
    status.add_argument("--json", action="store_true")
    _handler(status, f"{_LIFECYCLE}:rotation_status")


def _compromised(commands: Commands) -> None:
    compromised = commands.add_parser(
        "compromised", help="a credential leaked: mark it exposed, revoke its grants, rotate it, open an incident")
    compromised.add_argument("name", help="NAME, CONTEXT/NAME or aegis://CONTEXT/NAME")
    compromised.add_argument("--severity", default="high", help="critical, high, medium or low (default: high)")
    compromised.add_argument("--impact", default="", help="what the exposure put at risk, for the incident")
    compromised.add_argument("--json", action="store_true", help="print the incident as JSON")
    _handler(compromised, f"{_LIFECYCLE}:compromised")


def _revoke(commands: Commands) -> None:
    revoke = commands.add_parser("revoke", help="stop handing out a credential; retires every version")
    revoke.add_argument("name")
    revoke.add_argument("--reason", default="")
    _handler(revoke, f"{_CREDS}:revoke")


def _destroy(commands: Commands) -> None:
    destroy = commands.add_parser("destroy", help="delete a credential and its whole history")
    destroy.add_argument("name")
    destroy.add_argument("--yes", action="store_true", help="do not ask to type the name (scripts)")
    _handler(destroy, f"{_CREDS}:destroy")


def _history(commands: Commands) -> None:
    history = commands.add_parser("history", help="a credential's versions (never values)")
    history.add_argument("name")
    history.add_argument("--json", action="store_true")
    _handler(history, f"{_CREDS}:history")


def _passwd(commands: Commands) -> None:
    passwd = commands.add_parser("passwd", help="change the passphrase (rewraps the key only)")
    passwd.add_argument("--new-passphrase-stdin", action="store_true", help="read the new passphrase from stdin")
    _handler(passwd, f"{_VAULT}:passwd")


def _slots(commands: Commands) -> None:
    slots = commands.add_parser("slots", help="unlock slots: list, add, remove")
    actions = slots.add_subparsers(dest="slots_command", metavar="ACTION", required=True, parser_class=_Parser)
    _handler(actions.add_parser("list", help="list unlock slots"), f"{_VAULT}:slots_list")
    slot_add = actions.add_parser("add", help="add an unlock slot")
    slot_add.add_argument("kind", choices=["passphrase", "keyring", "env", "recovery"])
    slot_add.add_argument("--new-passphrase-stdin", action="store_true",
                          help="for a passphrase slot: read it from stdin")
    _handler(slot_add, f"{_VAULT}:slots_add")
    slot_remove = actions.add_parser("remove", help="remove an unlock slot")
    slot_remove.add_argument("slot_id")
    _handler(slot_remove, f"{_VAULT}:slots_remove")


def _audit(commands: Commands) -> None:
    audit = commands.add_parser("audit", help="the tamper-evident audit log")
    actions = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True, parser_class=_Parser)
    tail = actions.add_parser("tail", help="the latest entries")
    tail.add_argument("-n", "--lines", type=int, default=20)
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new entries")
    _handler(tail, f"{_AUDIT}:tail")
    _handler(actions.add_parser("verify", help="check the hash chain and the signed head"), f"{_AUDIT}:verify")
    export = actions.add_parser("export", help="every entry, one JSON object per line")
    export.add_argument("--jsonl", action="store_true", required=True, help="JSON Lines (the only format)")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    _handler(export, f"{_AUDIT}:export")
    note = actions.add_parser("note", help="write a note of your own into the log (needs the vault unlocked)")
    note.add_argument("text", help="what happened, in your words (no secrets: the log is read by others)")
    _handler(note, f"{_AUDIT}:note")


def _import_env(commands: Commands) -> None:
    import_env = commands.add_parser("import-env", help="turn a .env file into credentials")
    import_env.add_argument("file")
    import_env.add_argument("--context", default="")
    import_env.add_argument("--service", default="")
    import_env.add_argument("--all", action="store_true",
                            help="import every variable, not only secret-looking ones")
    import_env.add_argument("--template", metavar="FILE", help="write the env template here (default: stdout)")
    import_env.add_argument("--delete", action="store_true",
                            help="delete the plaintext file afterwards without asking")
    _handler(import_env, "aegis_tui.cli.commands.import_env:import_env")


def _status(commands: Commands) -> None:
    status = commands.add_parser("status", help="where the vault is and what state it is in")
    status.add_argument("--json", action="store_true")
    _handler(status, f"{_VAULT}:status")


def _demo(commands: Commands) -> None:
    _handler(commands.add_parser("demo", help="open the app on a throwaway vault of fake credentials"),
             "aegis_tui.cli.commands.app:demo")


_AGENTS = "aegis_tui.cli.commands.agents"


def _serve(commands: Commands) -> None:
    serve = commands.add_parser("serve", help="run the broker headless (daemons: standing grants only)")
    serve.add_argument("--approval-timeout", metavar="DURATION",
                       help="deny requests nobody answered after this long (default 120s)")
    _handler(serve, f"{_AGENTS}:serve")


def _session(commands: Commands) -> None:
    session = commands.add_parser("session", help="agent sessions: start, exec, end, list")
    actions = session.add_subparsers(dest="session_command", metavar="ACTION", required=True, parser_class=_Parser)
    start = actions.add_parser("start", help="start a session; prints the export line for AEGIS_SESSION")
    start.add_argument("--context", required=True, help="what the agent may see, e.g. acme/dev ('' for all)")
    start.add_argument("--ttl", default="2h", help="how long it lasts (default 2h)")
    start.add_argument("--label", default="", help="a name for the agent, shown in approvals")
    _handler(start, f"{_AGENTS}:session_start")
    run = actions.add_parser("exec", help="run an agent inside a new session that ends when it exits")
    run.add_argument("--context", required=True)
    run.add_argument("--ttl", default="2h")
    run.add_argument("--label", default="")
    containment = run.add_mutually_exclusive_group()
    containment.add_argument("--no-sandbox", action="store_true",
                             help="run the agent uncontained (said on stderr, recorded in the audit log)")
    containment.add_argument("--require-sandbox", action="store_true",
                             help="refuse to start when the agent cannot be sandboxed (no usable bwrap)")
    run.add_argument("--network", choices=("host", "none"), default="host",
                     help="the sandbox's network: host (unchanged, the default) or none")
    run.add_argument("--explain", action="store_true",
                     help="print what the sandbox hides or makes read-only, and why; start nothing")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    _handler(run, f"{_AGENTS}:session_exec")
    end = actions.add_parser("end", help="end a session (default: $AEGIS_SESSION) and revoke its grants")
    end.add_argument("id", nargs="?")
    _handler(end, f"{_AGENTS}:session_end")
    listing = actions.add_parser("list", help="active sessions")
    listing.add_argument("--all", action="store_true", help="also ended and expired ones")
    listing.add_argument("--json", action="store_true")
    _handler(listing, f"{_AGENTS}:session_list")


def _grants(commands: Commands) -> None:
    grants = commands.add_parser("grants", help="access grants: list, add, revoke")
    actions = grants.add_subparsers(dest="grants_command", metavar="ACTION", required=True, parser_class=_Parser)
    listing = actions.add_parser("list", help="active grants")
    listing.add_argument("--all", action="store_true", help="also revoked, expired and used-up ones")
    listing.add_argument("--json", action="store_true")
    _handler(listing, f"{_AGENTS}:grants_list")
    add = actions.add_parser("add", help="a standing grant (needs the vault unlocked, never via the broker)")
    add.add_argument("reference", nargs="?", help="NAME, CONTEXT/NAME or aegis://CONTEXT/NAME")
    add.add_argument("--service", help="every credential of this service instead of one")
    add.add_argument("--tag", help="every credential with this tag instead of one")
    add.add_argument("--context", help="the context it applies in (default: the credential's)")
    add.add_argument("--session", help="only for this agent session")
    add.add_argument("--scope", action="append", default=[], help="a scope label such as repo:push (repeatable)")
    add.add_argument("--uses", help="how many times (default: unlimited)")
    add.add_argument("--ttl", help="how long, e.g. 1h or 30d (default: until revoked)")
    add.add_argument("--reason", default="")
    add.add_argument("--reveal", action="store_true",
                     help="also let the holder read the raw value (get); default: inject into commands only")
    binding = add.add_mutually_exclusive_group()
    binding.add_argument("--program", help="only for commands that run this program (any arguments)")
    binding.add_argument("--command", dest="bound_command", help="only for this exact command line (split like a shell)")
    add.add_argument("--cwd", help="only for commands run in this folder or below")
    _handler(add, f"{_AGENTS}:grants_add")
    revoke = actions.add_parser("revoke", help="end a grant now")
    revoke.add_argument("id")
    revoke.add_argument("--reason", default="")
    _handler(revoke, f"{_AGENTS}:grants_revoke")


_INCIDENTS = "aegis_tui.cli.commands.incidents"


def _incidents(commands: Commands) -> None:
    incidents = commands.add_parser("incidents", help="compromise incidents: open, list, show, edit, close, export")
    actions = incidents.add_subparsers(dest="incidents_command", metavar="ACTION", required=True, parser_class=_Parser)
    opening = actions.add_parser("open", help="open an incident for a credential you know was exposed")
    opening.add_argument("reference", help="NAME, CONTEXT/NAME or aegis://CONTEXT/NAME")
    opening.add_argument("--severity", required=True, help="critical, high, medium or low")
    opening.add_argument("--impact", default="", help="what the exposure put at risk")
    _handler(opening, f"{_INCIDENTS}:incidents_open")
    listing = actions.add_parser("list", help="open incidents, newest first")
    listing.add_argument("--all", action="store_true", help="also closed ones")
    listing.add_argument("--json", action="store_true")
    _handler(listing, f"{_INCIDENTS}:incidents_list")
    show = actions.add_parser("show", help="one incident with its response timeline")
    show.add_argument("id", help="the id or a unique start of it (4 characters or more)")
    show.add_argument("--json", action="store_true")
    _handler(show, f"{_INCIDENTS}:incidents_show")
    edit = actions.add_parser("edit", help="set severity, impact, root cause or prevention")
    edit.add_argument("id")
    edit.add_argument("--severity", help="critical, high, medium or low")
    edit.add_argument("--impact", metavar="TEXT")
    edit.add_argument("--root-cause", metavar="TEXT")
    edit.add_argument("--prevention", metavar="TEXT")
    _handler(edit, f"{_INCIDENTS}:incidents_edit")
    for action, what in (("close", "close (needs a root cause and a prevention)"), ("reopen", "open again")):
        sub = actions.add_parser(action, help=what)
        sub.add_argument("id")
        _handler(sub, f"{_INCIDENTS}:incidents_{action}")
    export = actions.add_parser("export", help="incidents as JSON in the team's incident template")
    export.add_argument("ids", nargs="*", metavar="ID", help="only these (default: all)")
    export.add_argument("-o", "--output", metavar="FILE", help="write here (mode 0600) instead of stdout")
    _handler(export, f"{_INCIDENTS}:incidents_export")


def _run(commands: Commands) -> None:
    run = commands.add_parser("run", help="run a command with credentials in its environment, output masked")
    run.add_argument("--need", action="append", default=[], metavar="NAME[=ENV]",
                     help="a credential to inject (repeatable); ENV defaults to the name in capitals")
    run.add_argument("--env-file", metavar="FILE", help="an env template: KEY=aegis://context/name lines")
    run.add_argument("--reason", default="", help="why, shown to the human who approves")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    _handler(run, "aegis_tui.cli.commands.run:run")


def _project(commands: Commands) -> None:
    project = commands.add_parser("project", help="the project file .aegis.toml")
    actions = project.add_subparsers(dest="project_command", metavar="ACTION", required=True, parser_class=_Parser)
    init = actions.add_parser("init", help="write .aegis.toml here: a context and variables -> credentials")
    init.add_argument("--context", default="")
    init.add_argument("--env", action="append", default=[], metavar="VARIABLE=NAME")
    init.add_argument("--force", action="store_true", help="replace an existing .aegis.toml")
    _handler(init, "aegis_tui.cli.commands.run:project_init")


_SCAN = "aegis_tui.cli.commands.scan"


def _scan(commands: Commands) -> None:
    scan = commands.add_parser("scan", help="find secrets (the vault's own values and provider tokens) in files")
    scan.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (default .); - reads stdin")
    scan.add_argument("--staged", action="store_true", help="the files staged for the next commit (pre-commit)")
    scan.add_argument("--git-log", nargs="?", const="", metavar="RANGE", help="every commit's added lines")
    scan.add_argument("--json", action="store_true")
    scan.add_argument("--sarif", action="store_true", help="SARIF 2.1.0, for GitHub code scanning")
    scan.add_argument("--baseline", metavar="FILE", help="ignore the findings accepted in this file")
    scan.add_argument("--write-baseline", metavar="FILE", help="accept every current finding into FILE")
    scan.add_argument("--rules", action="append", metavar="FILE", help="more rules (gitleaks TOML schema)")
    scan.add_argument("--no-vault", action="store_true", help="provider rules only; do not unlock the vault")
    _handler(scan, f"{_SCAN}:scan")


def _redact(commands: Commands) -> None:
    _handler(commands.add_parser("redact", help="copy stdin to stdout with every vault value masked"),
             f"{_SCAN}:redact")


_POLICY = "aegis_tui.cli.commands.policy"


def _policy(commands: Commands) -> None:
    policy = commands.add_parser("policy", help="rotation policies and provider hooks")
    actions = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True, parser_class=_Parser)
    show = actions.add_parser("show", help="a credential's rotation period, overlap and method")
    show.add_argument("name", help="NAME, CONTEXT/NAME or aegis://CONTEXT/NAME")
    show.add_argument("--json", action="store_true")
    _handler(show, f"{_POLICY}:show")
    change = actions.add_parser("set", help="how and how often a credential is rotated")
    change.add_argument("name", help="NAME, CONTEXT/NAME or aegis://CONTEXT/NAME")
    change.add_argument("--every", metavar="DURATION", help="rotation period in whole days, e.g. 90d (0: none)")
    change.add_argument("--overlap", metavar="DURATION", help="how long the previous value stays valid, e.g. 24h")
    method = change.add_mutually_exclusive_group()
    method.add_argument("--manual", action="store_true", help="a person types the new value")
    method.add_argument("--generate", action="store_true", help="generate the new value")
    method.add_argument("--command", metavar="HOOK", help="ask a provider hook of the policy file")
    change.add_argument("--length", type=int, help="with --generate (default 32)")
    change.add_argument("--charset", help="with --generate: alnum, alpha, digits, hex, symbols, base64url")
    change.add_argument("--prefix", help="with --generate: fixed prefix, e.g. sk_")
    _handler(change, f"{_POLICY}:set_policy")
    hooks = actions.add_parser("hooks", help="the provider hooks of the policy file")
    hooks.add_argument("--json", action="store_true")
    _handler(hooks, f"{_POLICY}:hooks")
    hook_add = actions.add_parser("hook-add", help="declare a provider hook: -- ROTATE_CMD [ARGS...]")
    hook_add.add_argument("name")
    hook_add.add_argument("--timeout", default="30s", metavar="DURATION", help="default 30s")
    hook_add.add_argument("--revoke-command", metavar="'CMD ARGS'", help="revokes an old value (shell-like words)")
    hook_add.add_argument("rotate", nargs="+", metavar="ROTATE_CMD", help="prints a new value; after --")
    _handler(hook_add, f"{_POLICY}:hook_add")
    hook_remove = actions.add_parser("hook-remove", help="remove a provider hook from the policy file")
    hook_remove.add_argument("name")
    _handler(hook_remove, f"{_POLICY}:hook_remove")


_REVIEW = "aegis_tui.cli.commands.review"


def _review(commands: Commands) -> None:
    review = commands.add_parser("review", help="the access review: every credential, its use and grants; decide, sign")
    review.add_argument("--json", action="store_true")
    review.add_argument("--flagged", action="store_true", help="only rows with a flag (unused, overdue, ...)")
    _handler(review, f"{_REVIEW}:review_show")
    actions = review.add_subparsers(dest="review_command", metavar="ACTION", parser_class=_Parser)
    apply = actions.add_parser("apply", help="decide every credential from a JSON file, apply, sign and store")
    apply.add_argument("decisions", metavar="DECISIONS.json",
                       help='{"NAME": "keep"|"rotate"|"revoke"|{"action": "narrow", "grants": [...], "until": TIME}}')
    _handler(apply, f"{_REVIEW}:review_apply")
    listing = actions.add_parser("list", help="finished reviews, oldest first")
    listing.add_argument("--json", action="store_true")
    _handler(listing, f"{_REVIEW}:review_list")
    export = actions.add_parser("export", help="a finished review as signed Markdown or JSON")
    export.add_argument("id", nargs="?", metavar="ID", help="the review id or a unique start (default: the latest)")
    export.add_argument("--format", choices=["md", "json"], default="md")
    export.add_argument("-o", "--output", metavar="FILE", help="write here (mode 0600) instead of stdout")
    _handler(export, f"{_REVIEW}:review_export")
    verify = actions.add_parser("verify", help="check an exported review's signature")
    verify.add_argument("file", metavar="FILE")
    _handler(verify, f"{_REVIEW}:review_verify")


def _keygen(commands: Commands) -> None:
    _handler(commands.add_parser("keygen", help="print a new random AEGIS_VAULT_KEY"), f"{_VAULT}:keygen")


_COMMANDS = {
    "init": _init, "add": _add, "get": _get, "list": _list, "show": _show, "rotate": _rotate,
    "revoke": _revoke, "destroy": _destroy, "history": _history, "passwd": _passwd, "slots": _slots,
    "audit": _audit, "import-env": _import_env, "status": _status, "keygen": _keygen, "demo": _demo,
    "serve": _serve, "session": _session, "grants": _grants, "run": _run, "project": _project,
    "scan": _scan, "redact": _redact, "incidents": _incidents, "policy": _policy,
    "review": _review, "rotation": _rotation, "compromised": _compromised,
}
_GLOBAL_WITH_VALUE = {"--passphrase-fd"}


def _requested_command(argv: list[str]) -> str | None:
    """The sub-command named in argv, skipping global options."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _GLOBAL_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in _COMMANDS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The full grammar, or only the named command's part of it (it is all that runs,
    and building all fifteen sub-parsers costs more than a ``get`` does)."""
    parser = _Parser(
        prog="aegis-vault",
        description="A credential vault for people who work with AI coding agents.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"aegis-vault {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--passphrase-fd", type=int, metavar="FD",
                        help="read the unlock passphrase (or recovery key) from this file descriptor")
    parser.add_argument("--recovery", action="store_true", help="unlock with the recovery key")
    parser.set_defaults(handler="aegis_tui.cli.commands.app:run_app")  # no command: the app
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    wanted = _requested_command(argv or [])
    for name, add_command in _COMMANDS.items():
        if wanted is None or name == wanted:
            add_command(commands)
    return parser


def _metadata_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--kind", default="secret",
                     help="api_key, access_token, password, connection_string, ssh_key, certificate, totp, secret")
    sub.add_argument("--service", default="")
    sub.add_argument("--context", default="")
    sub.add_argument("--tag", action="append", default=[], dest="tags")
    sub.add_argument("--notes", default="")
    sub.add_argument("--url", default="", help="URL or host the credential is for (git uses it)")
    sub.add_argument("--expires", metavar="DATE", help="expiry date, e.g. 2027-03-31")
    sub.add_argument("--rotate-every", type=int, metavar="DAYS", dest="rotation_days")
    sub.add_argument("--field", action="append", default=[], metavar="KEY=TEXT",
                     help="a custom non-secret field (sealed like the rest)")


def _generate_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--generate", action="store_true", help="generate the value instead of reading it")
    sub.add_argument("--length", type=int, default=32)
    sub.add_argument("--charset", default="alnum", choices=["alnum", "alpha", "digits", "hex", "symbols", "base64url"])
    sub.add_argument("--prefix", default="", help="fixed prefix for a generated value, e.g. sk_")
