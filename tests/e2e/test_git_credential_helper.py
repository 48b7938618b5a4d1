"""``git-credential-aegis`` with real git against a real git-over-HTTP server.

git's only credential helper is the product's console script from this virtualenv
(``!'/…/.venv/bin/git-credential-aegis'``); the server (``tests/support/git_http_server``)
accepts one username and token, and the token is a credential in a real vault whose
``--url`` names the repository. Two ways in:

- direct: ``AEGIS_VAULT_KEY`` is in git's environment, so the helper unlocks the vault;
- through a broker: a real ``aegis-vault serve`` runs and git's environment has no key,
  so the helper can only ask the broker (a standing grant, or a denial once the 2 s
  approval timeout passes on a headless broker).

Every test has a private ``XDG_RUNTIME_DIR``; the token is a canary whose every
revealing form is searched for in git's output, the server's output, every file the
test wrote and git's configuration.
"""

from __future__ import annotations

import base64
import json
import secrets
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import Broker, audit_entries, isolate, without_key
from tests.support.canary import files_leaking, leaked_forms
from tests.support.git_client import Git
from tests.support.git_http_server import GitHttpServer, make_bare_repo

USERNAME = "agent"
REPO = "demo.git"
TOKEN = "ghp_" + secrets.token_urlsafe(24)
WRONG = "ghp_" + secrets.token_urlsafe(24)
INSTALLED_HELPER = Path(sys.executable).with_name("git-credential-aegis")
# What pip writes for the console script, for a virtualenv installed before the entry
# point existed (``pip install --no-deps -e .`` adds the real one).
CONSOLE_SCRIPT = f"""#!{sys.executable}
import sys
from aegis_tui.cli.git_credential import main
if __name__ == '__main__':
    sys.exit(main())
"""
NAME = "demo-push"


def ok(result):  # type: ignore[no-untyped-def]
    assert result.returncode == 0, (result.returncode, result.err)
    return result


@pytest.fixture(scope="session")
def credential_helper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``git-credential-aegis`` console script of this virtualenv, or its equivalent."""
    if INSTALLED_HELPER.exists():
        return INSTALLED_HELPER
    script = tmp_path_factory.mktemp("bin") / "git-credential-aegis"
    script.write_text(CONSOLE_SCRIPT)
    script.chmod(0o755)
    return script


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHttpServer]:
    root = tmp_path / "served"
    root.mkdir()
    make_bare_repo(root, REPO)
    with GitHttpServer(root, USERNAME, TOKEN) as running:
        yield running


@pytest.fixture
def owner(cli, request):  # type: ignore[no-untyped-def]
    """A vault only the key opens, with a private runtime folder."""
    isolate(cli.env, request.addfinalizer)
    cli.env["AEGIS_VAULT_KEY"] = "5f" * 32
    ok(cli("init", "--no-passphrase"))
    return cli


def add_token(owner, server: GitHttpServer, value: str, *, url: str | None = None) -> None:  # type: ignore[no-untyped-def]
    ok(owner("add", NAME, "--kind", "access_token", "--context", "acme/dev", "--url", url or server.url(REPO),
             "--field", f"username={USERNAME}", input=value))


@pytest.fixture
def git_for(owner, tmp_path: Path, credential_helper: Path):  # type: ignore[no-untyped-def]
    """``git_for(with_key=...)``: git whose credential helper is git-credential-aegis, on
    this test's vault, with or without the vault key in its environment."""

    def make(*, with_key: bool) -> Git:
        env = owner.env if with_key else without_key(owner.env)
        keep = ("AEGIS_VAULT_HOME", "AEGIS_VAULT_KEY", "AEGIS_VAULT_INSECURE_FAST_KDF", "XDG_RUNTIME_DIR", "PATH")
        return Git(tmp_path / "client", "!" + shlex.quote(str(credential_helper)),
                   {k: env[k] for k in keep if k in env})

    return make


@pytest.fixture
def broker(owner, tmp_path: Path) -> Iterator[Broker]:
    with Broker(owner.env, tmp_path / "serve.log") as running:
        yield running


def health(owner) -> str:  # type: ignore[no-untyped-def]
    found = {item["name"]: item for item in json.loads(ok(owner("list", "--json")).out)}
    return str(found[NAME]["health"])


def no_leak(*outputs: str | bytes) -> list[str]:
    data = b"".join(o.encode() if isinstance(o, str) else o for o in outputs)
    return leaked_forms(data, TOKEN) + [f"wrong:{form}" for form in leaked_forms(data, WRONG)]


# -- (a) direct ------------------------------------------------------------------------------------
def test_direct_mode_a_push_succeeds_and_a_clone_sees_the_commit(owner, git_for, server, tmp_path: Path):
    add_token(owner, server, TOKEN)
    git = git_for(with_key=True)
    work, commit = git.commit_in_new_repo("work", {"README": b"hello\n"})
    push = git("push", server.url(REPO), "main", cwd=work)
    git("clone", "--quiet", server.url(REPO), "copy")
    assert git("rev-parse", "HEAD", cwd=git.folder / "copy").stdout.strip() == commit
    assert (git.folder / "copy" / "README").read_bytes() == b"hello\n"
    assert server.auth_failures == 0 and server.auth_successes >= 2
    leaks = no_leak(push.stdout, push.stderr)
    assert leaks == [], leaks
    reads = [e for e in audit_entries(owner.env) if e["operation"] == "read" and e["target"] == NAME]
    assert reads and all(e["detail"]["via"] == f"git credential for {server.url(REPO)}" for e in reads)
    assert health(owner) == "ok"


def test_a_credential_for_another_repository_is_not_handed_out(owner, git_for, server, tmp_path: Path):
    add_token(owner, server, TOKEN, url=server.url("other.git"))
    git = git_for(with_key=True)
    result = git("ls-remote", server.url(REPO), check=False)
    assert result.returncode == 128
    assert "no credential for" in result.stderr
    assert server.auth_successes == 0 and server.auth_failures == 0
    assert not [e for e in audit_entries(owner.env) if e["operation"] == "read"]


# -- (b) through a broker with a standing grant -----------------------------------------------------
def test_through_a_broker_with_a_standing_grant_a_push_succeeds_without_the_key(owner, git_for, server, broker,
                                                                               tmp_path: Path):
    add_token(owner, server, TOKEN)
    grant_id = ok(owner("grants", "add", NAME)).out.strip()
    git = git_for(with_key=False)
    assert "AEGIS_VAULT_KEY" not in git.env
    work, commit = git.commit_in_new_repo("work", {"README": b"through the broker\n"})
    push = git("push", server.url(REPO), "main", cwd=work)
    assert git("ls-remote", server.url(REPO)).stdout.split()[0] == commit
    assert server.auth_failures == 0
    leaks = no_leak(push.stdout, push.stderr)
    assert leaks == [], leaks
    reads = [e for e in audit_entries(owner.env) if e["operation"] == "read" and e["target"] == NAME]
    assert reads
    assert all(e["detail"]["via"] == f"git credential for http://127.0.0.1:{server.port}/{REPO}" for e in reads)
    assert all(e["detail"]["grant"] == grant_id for e in reads)


# -- (c) through a broker without a grant -----------------------------------------------------------
def test_through_a_headless_broker_without_a_grant_a_push_fails_without_prompting(owner, git_for, server, broker,
                                                                                tmp_path: Path):
    add_token(owner, server, TOKEN)
    git = git_for(with_key=False)
    work, _ = git.commit_in_new_repo("work", {"README": b"hello\n"})
    push = git("push", server.url(REPO), "main", cwd=work, check=False)
    assert push.returncode == 128
    assert "no one approved access to" in push.stderr
    assert "terminal prompts disabled" in push.stderr  # git gave up instead of asking anyone
    assert server.auth_successes == 0 and server.auth_failures == 0
    operations = [(e["operation"], e["target"]) for e in audit_entries(owner.env)]
    assert ("access.request", NAME) in operations and ("access.timeout", NAME) in operations
    assert ("read", NAME) not in operations


# -- (d) a token the server rejects ------------------------------------------------------------------
def test_a_rejected_token_is_marked_failing_and_a_rotation_with_the_right_one_fixes_the_push(owner, git_for, server,
                                                                                            tmp_path: Path):
    add_token(owner, server, WRONG)
    git = git_for(with_key=True)
    work, commit = git.commit_in_new_repo("work", {"README": b"hello\n"})
    push = git("push", server.url(REPO), "main", cwd=work, check=False)
    assert push.returncode == 128
    assert "Authentication failed" in push.stderr
    assert "marked as failing" in push.stderr  # the helper's erase ran
    assert server.auth_failures >= 1 and server.auth_successes == 0
    assert health(owner) == "failing"
    failing = [e for e in audit_entries(owner.env) if e["operation"] == "failing"]
    assert len(failing) == 1 and failing[0]["target"] == NAME
    assert failing[0]["detail"]["via"] == f"git rejected it at {server.url(REPO)}"

    ok(owner("rotate", NAME, "--overlap", "0", input=TOKEN))
    assert health(owner) == "ok"
    git("push", server.url(REPO), "main", cwd=work)
    assert git("ls-remote", server.url(REPO)).stdout.split()[0] == commit
    assert health(owner) == "ok"
    leaks = no_leak(push.stdout, push.stderr)
    assert leaks == [], leaks


def test_through_a_broker_a_rejected_token_is_marked_failing_too(owner, git_for, server, broker, tmp_path: Path):
    add_token(owner, server, WRONG)
    ok(owner("grants", "add", NAME))
    git = git_for(with_key=False)
    push = git("ls-remote", server.url(REPO), check=False)
    assert push.returncode == 128 and "Authentication failed" in push.stderr
    assert health(owner) == "failing"
    assert [e["target"] for e in audit_entries(owner.env) if e["operation"] == "failing"] == [NAME]


# -- (e) the token stays out of everything but the HTTP request ------------------------------------------
@pytest.mark.parametrize("mode", ["direct", "broker"])
def test_the_token_never_reaches_git_output_server_output_files_or_git_config(owner, git_for, server, tmp_path: Path,
                                                                             capfd, mode):
    add_token(owner, server, TOKEN)
    running = None
    if mode == "broker":
        ok(owner("grants", "add", NAME))
        running = Broker(owner.env, tmp_path / "serve.log", approval_timeout="2s")
    try:
        if running is not None:
            running.start()
        git = git_for(with_key=mode == "direct")
        work, _ = git.commit_in_new_repo("work", {"README": b"hello\n"})
        outputs = [git("push", "-v", server.url(REPO), "main", cwd=work)]
        git("remote", "add", "origin", server.url(REPO), cwd=work)
        outputs.append(git("fetch", "-v", "origin", cwd=work))
        outputs.append(git("clone", server.url(REPO), "copy"))
        outputs.append(git("config", "--list", "--show-origin", cwd=work))
        outputs.append(git("config", "--global", "--list"))
    finally:
        if running is not None:
            running.stop()
    assert server.auth_successes >= 3
    leaks = no_leak(*[o.stdout for o in outputs], *[o.stderr for o in outputs])
    assert leaks == [], f"the token leaked into git's output as {leaks}"
    config = outputs[-1].stdout + outputs[-2].stdout
    assert "password" not in config.lower() and "ghp_" not in config
    assert not (git.home / ".git-credentials").exists()
    captured = capfd.readouterr()  # what the in-process HTTP server (and anything else here) printed
    leaks = no_leak(captured.out, captured.err)
    assert leaks == [], f"the token leaked into the server's output as {leaks}"
    basic = base64.b64encode(f"{USERNAME}:{TOKEN}".encode())
    leaking_files = files_leaking(tmp_path, TOKEN, extra=(basic,))
    assert leaking_files == [], f"files holding the token: {leaking_files}"


# -- (f) malformed input to the helper ----------------------------------------------------------------
STDIN_CANARY = "CANARY-PW-" + secrets.token_hex(12)
MALFORMED = {
    "not key=value": f"this is not a request\npassword={STDIN_CANARY}\n\n",
    "no protocol": f"host=example.com\npassword={STDIN_CANARY}\n\n",
    "no host": f"protocol=https\npassword={STDIN_CANARY}\n\n",
    "bad url": f"url=no-scheme-{STDIN_CANARY}\npassword={STDIN_CANARY}\n\n",
    "twice": f"protocol=https\nprotocol=http\nhost=h\npassword={STDIN_CANARY}\n\n",
    "nul": f"protocol=https\nhost=h\x00\npassword={STDIN_CANARY}\n\n",
    "too long": f"protocol=https\nhost=h\npassword={STDIN_CANARY}\nx={'y' * 70_000}\n\n",
}


@pytest.fixture
def helper(owner, credential_helper: Path):  # type: ignore[no-untyped-def]
    """``helper(ACTION, STDIN)``: git-credential-aegis run directly, on this test's vault."""

    def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([str(credential_helper), *args], input=stdin, capture_output=True, env=owner.env,
                              timeout=120, start_new_session=True)

    return run


@pytest.mark.parametrize("action", ["get", "store", "erase"])
@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_stdin_is_one_line_on_stderr_a_non_zero_exit_and_never_echoes_the_password(helper, action,
                                                                                             case):
    result = helper(action, stdin=MALFORMED[case].encode())
    assert result.returncode != 0
    lines = result.stderr.decode(errors="replace").splitlines()
    assert len(lines) == 1 and lines[0].startswith("git-credential-aegis: "), len(lines)
    assert "Traceback" not in lines[0]
    assert result.stdout == b""
    leaks = leaked_forms(result.stdout + result.stderr, STDIN_CANARY)
    assert leaks == [], f"the password from stdin was echoed as {leaks}"


@pytest.mark.parametrize("action", ["get", "store", "erase"])
def test_stdin_that_is_not_utf8_is_refused_without_echoing_it(helper, action):
    data = b"protocol=https\nhost=h\xff\xfe\npassword=" + STDIN_CANARY.encode() + b"\n\n"
    result = helper(action, stdin=data)
    assert result.returncode == 2
    assert result.stderr == b"git-credential-aegis: git credential request is not UTF-8 text\n"
    assert result.stdout == b""


def test_an_unknown_action_or_none_is_a_usage_line_and_exit_2(helper):
    for args in (["bogus"], [], ["get", "store"]):
        result = helper(*args)
        assert result.returncode == 2
        assert result.stderr.decode().startswith("git-credential-aegis: usage:")
        assert len(result.stderr.splitlines()) == 1


def test_store_writes_nothing_anywhere_and_prints_nothing(owner, helper, home: Path):
    ok(owner("add", NAME, "--url", "https://example.com/x.git", input=TOKEN))
    before = {p.name: p.read_bytes() for p in home.iterdir() if p.is_file()}
    request = f"protocol=https\nhost=example.com\npath=x.git\nusername=u\npassword={STDIN_CANARY}\n\n"
    result = helper("store", stdin=request.encode())
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    after = {p.name: p.read_bytes() for p in home.iterdir() if p.is_file()}
    assert after == before, "store changed the vault's files"


def test_get_answers_with_the_username_and_token_in_git_format(owner, server, helper):
    add_token(owner, server, TOKEN)
    request = f"protocol=http\nhost=127.0.0.1:{server.port}\npath={REPO}\n\n".encode()
    result = helper("get", stdin=request)
    assert result.returncode == 0, result.stderr
    expected = f"username={USERNAME}\npassword={TOKEN}\n".encode()
    same = result.stdout == expected
    assert same, "get did not answer username= and password= lines for git"
    assert result.stderr == b""
