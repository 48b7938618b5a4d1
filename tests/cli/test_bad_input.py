"""Bad input of every kind: one clear stderr line, the documented exit code, no
traceback (unless ``--debug``), and nothing changed in the vault."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

CANARY = "s3cr3t-CANARY-5d1e"


def names(vault_cli) -> list[str]:  # type: ignore[no-untyped-def]
    result = vault_cli("list", "--json")
    assert result.returncode == 0, result.err
    return sorted(row["name"] for row in json.loads(result.out))


def checkpoint(home) -> None:  # type: ignore[no-untyped-def]
    """Fold the WAL into the main file so byte-level damage hits real data."""
    conn = sqlite3.connect(home / "vault.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


@pytest.fixture
def stocked(env_vault):  # type: ignore[no-untyped-def]
    """An env-key vault with two credentials."""
    for name, value in (("alpha", "value-alpha"), ("beta", "value-beta")):
        result = env_vault("add", name, input=value)
        assert result.returncode == 0, result.err
    return env_vault


# -- unlocking ------------------------------------------------------------------------------
def test_wrong_passphrase_exits_3_changes_nothing_and_is_audited_as_a_failed_unlock(pass_vault, expect_error):
    assert pass_vault.run("add", "api", input="value").returncode == 0
    before = pass_vault.run("list", "--json").out
    result = pass_vault.run("add", "sneaky", passphrase="not the passphrase", input="x")
    expect_error(result, 3, mentions=("wrong passphrase",))
    assert pass_vault.run("list", "--json").out == before
    tail = pass_vault.run("audit", "tail", "-n", "3").out.splitlines()
    failed = [line for line in tail if " unlock " in line and " failed " in line]
    assert len(failed) == 1, tail


def test_wrong_passphrase_with_debug_shows_a_traceback(pass_vault):
    result = pass_vault.run("--debug", "list", passphrase="not the passphrase")
    assert result.returncode != 0
    assert "Traceback" in result.err and "UnlockError" in result.err


def test_wrong_aegis_vault_key_exits_3_and_changes_nothing(stocked, expect_error):
    before = names(stocked)
    result = stocked("add", "sneaky", input="x", env={"AEGIS_VAULT_KEY": "a0" * 32})
    expect_error(result, 3, mentions=("AEGIS_VAULT_KEY",))
    assert names(stocked) == before


@pytest.mark.parametrize("bad_key", ["tooshort", "zz" * 32, "5f" * 31 + "5", "5f" * 33])
def test_malformed_aegis_vault_key_is_a_usage_error_naming_keygen_and_leaves_the_file_untouched(
        stocked, snapshot, bad_key, expect_error):
    before = snapshot()
    result = stocked("get", "alpha", env={"AEGIS_VAULT_KEY": bad_key})
    expect_error(result, 2, mentions=("AEGIS_VAULT_KEY", "64 hex"))
    assert result.stdout == b""
    assert snapshot() == before


def test_no_terminal_and_no_key_exits_3_naming_the_ways_in(pass_vault, expect_error):
    line = expect_error(pass_vault.cli("get", "api"), 3)
    assert "--passphrase-fd" in line and "--recovery" in line and "terminal" in line


def test_env_vault_without_its_key_exits_3_naming_aegis_vault_key(env_vault, expect_error):
    result = env_vault("list", env={"AEGIS_VAULT_KEY": None})
    expect_error(result, 3, mentions=("AEGIS_VAULT_KEY", "--recovery"))


def test_empty_passphrase_fd_is_a_usage_error(pass_vault, expect_error):
    expect_error(pass_vault.run("list", passphrase=""), 2, mentions=("file descriptor",))


# -- the vault file -----------------------------------------------------------------------------
def test_missing_vault_exits_5_and_names_aegis_vault_init(cli, home, expect_error):
    result = cli("list", env={"AEGIS_VAULT_KEY": "5f" * 32})
    expect_error(result, 5, mentions=("aegis-vault init",))
    assert not (home / "vault.db").exists()


def test_empty_vault_file_exits_5_and_stays_empty(cli, home, expect_error):
    path = home / "vault.db"
    path.touch(mode=0o600)
    expect_error(cli("list", env={"AEGIS_VAULT_KEY": "5f" * 32}), 5, mentions=("empty",))
    assert path.read_bytes() == b""


@pytest.mark.parametrize("keep", [100, 4096, 0.5])
def test_truncated_vault_file_exits_5_without_changing_it(stocked, home, snapshot, keep, expect_error):
    checkpoint(home)
    path = home / "vault.db"
    data = path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    path.write_bytes(data[:cut])
    before = snapshot()
    result = stocked("get", "beta")
    expect_error(result, 5)
    assert result.stdout == b""
    assert snapshot() == before


def test_non_sqlite_file_exits_5_and_is_not_modified(cli, home, snapshot, expect_error):
    path = home / "vault.db"
    path.write_bytes(b"this is my shopping list, not a vault\n" * 200)
    path.chmod(0o600)
    before = snapshot()
    expect_error(cli("list", env={"AEGIS_VAULT_KEY": "5f" * 32}), 5, mentions=("not an aegis-vault vault",))
    assert snapshot() == before


def test_other_sqlite_database_exits_5(cli, home, expect_error):
    path = home / "vault.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    path.chmod(0o600)
    expect_error(cli("list", env={"AEGIS_VAULT_KEY": "5f" * 32}), 5, mentions=("not an aegis-vault vault",))


def test_vault_from_a_newer_schema_exits_5_asking_to_upgrade(stocked, home, snapshot, expect_error):
    conn = sqlite3.connect(home / "vault.db")
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    checkpoint(home)
    before = snapshot()
    expect_error(stocked("list"), 5, mentions=("upgrade",))
    expect_error(stocked("add", "new", input="x"), 5, mentions=("upgrade",))
    assert snapshot() == before


def test_world_readable_vault_exits_5_naming_chmod_600(stocked, home, expect_error):
    (home / "vault.db").chmod(0o644)
    expect_error(stocked("get", "alpha"), 5, mentions=("chmod 600",))
    (home / "vault.db").chmod(0o600)
    assert stocked("get", "alpha").stdout == b"value-alpha"


def test_group_readable_vault_folder_exits_5_naming_chmod_700(stocked, home, expect_error):
    home.chmod(0o750)
    try:
        expect_error(stocked("list"), 5, mentions=("chmod 700",))
    finally:
        home.chmod(0o700)


# -- names --------------------------------------------------------------------------------------
@pytest.mark.parametrize("duplicate", ["alpha", "ALPHA", "Alpha"])
def test_duplicate_name_exits_7_and_keeps_the_original_value(stocked, duplicate, expect_error):
    result = stocked("add", duplicate, input="a different value")
    expect_error(result, 7, mentions=("already exists",))
    assert names(stocked) == ["alpha", "beta"]
    assert stocked("get", "alpha").stdout == b"value-alpha"


@pytest.mark.parametrize("name", ["bell\x07name", "esc\x1b[31mred", "new\nline", "tab\tname", "del\x7fname",
                                  "bidi\u202eflip", " leading-space", ""])
def test_names_with_control_characters_or_bad_spacing_exit_2_and_add_nothing(stocked, name, expect_error):
    result = stocked("add", name, input="x")
    line = expect_error(result, 2)
    assert "\x1b" not in line and "\x07" not in line
    assert names(stocked) == ["alpha", "beta"]


@pytest.mark.parametrize("name", ["evil[/]", "[red]evil[/red]", "[link=https://x.test]click[/link]", "[blink]*x*",
                                  "{0}%s$HOME`id`"])
def test_markup_like_names_are_stored_and_printed_literally(stocked, name):
    added = stocked("add", name, "--notes", "[red]note[/red]", input="markup-value")
    assert added.returncode == 0, added.err
    assert repr(name) in added.err
    assert stocked("get", name).stdout == b"markup-value"
    listing = stocked("list")
    assert any(line.split("  ")[0].strip() == name for line in listing.out.splitlines()), listing.out
    shown = stocked("show", name)
    assert name in shown.out and "[red]note[/red]" in shown.out
    assert json.loads(stocked("show", name, "--json").out)["name"] == name
    assert name in stocked("audit", "tail", "-n", "20").out


def test_a_ten_megabyte_binary_value_round_trips_byte_exact(env_vault):
    value = os.urandom(10 * 1024 * 1024) + b"end"
    added = env_vault("add", "big", input=value, timeout=120)
    assert added.returncode == 0, added.err
    got = env_vault("get", "big", timeout=120)
    assert got.returncode == 0, got.err
    assert len(got.stdout) == len(value)
    assert got.stdout == value


def test_a_value_over_the_size_limit_is_refused_with_exit_2(env_vault, expect_error):
    result = env_vault("add", "huge", input=b"x" * (16 * 1024 * 1024 + 10), timeout=120)
    expect_error(result, 2, mentions=("MiB",))
    assert names(env_vault) == []


# -- stdin ------------------------------------------------------------------------------------------
def test_empty_stdin_exits_2_and_adds_nothing(stocked, expect_error):
    result = stocked("add", "x", stdin=subprocess.DEVNULL)
    expect_error(result, 2, mentions=("empty",))
    assert names(stocked) == ["alpha", "beta"]
    expect_error(stocked("rotate", "alpha", stdin=subprocess.DEVNULL), 2)
    assert stocked("get", "alpha").stdout == b"value-alpha"


def test_closed_stdin_exits_2_and_adds_nothing(stocked, expect_error):
    script = f"exec {sys.executable} -m aegis_tui add x <&-"
    proc = subprocess.run(["sh", "-c", script], capture_output=True, env=stocked.env, start_new_session=True,
                          timeout=60)
    expect_error(proc_result(proc), 2, mentions=("stdin",))
    assert names(stocked) == ["alpha", "beta"]


def proc_result(proc: subprocess.CompletedProcess):  # type: ignore[no-untyped-def]
    class _Result:
        returncode = proc.returncode
        stdout = proc.stdout
        stderr = proc.stderr
        out = proc.stdout.decode(errors="replace")
        err = proc.stderr.decode(errors="replace")

    return _Result()


# -- secrets on the command line ------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["add", "x", "--value", CANARY],
    ["add", "x", f"--value={CANARY}"],
    [f"--value={CANARY}", "add", "x"],
    ["add", "--password", CANARY, "x"],
    ["get", "x", "--token", CANARY],
    ["--token", CANARY, "list"],
    ["rotate", "alpha", f"--password={CANARY}"],
    ["init", "--passphrase", CANARY],
    ["add", "x", "--secret", CANARY],
    ["add", "x", f"--key={CANARY}"],
])
def test_secret_flags_are_refused_with_exit_2_explaining_shell_history_without_echoing_the_value(
        stocked, snapshot, argv, expect_error):
    before = snapshot()
    result = stocked(*argv, input="from-stdin")
    line = expect_error(result, 2, mentions=("shell history",))
    assert CANARY not in line and CANARY not in result.out
    assert snapshot() == before


@pytest.mark.parametrize("argv", [
    ["add", "name", CANARY],
    ["get", "alpha", CANARY],
    ["rotate", "alpha", CANARY],
    [CANARY],
    ["slots", "add", CANARY],
    ["get", "--version", CANARY, "alpha"],
    ["list", "--status", CANARY],
])
def test_an_unexpected_argument_exits_2_without_echoing_it(stocked, snapshot, argv, expect_error):
    before = snapshot()
    result = stocked(*argv, input="from-stdin")
    expect_error(result, 2)
    assert CANARY not in result.err and CANARY not in result.out
    assert snapshot() == before


def test_unknown_options_exit_2(stocked, expect_error):
    expect_error(stocked("add", "x", "--bogus", input="v"), 2)
    expect_error(stocked("list", "--colour"), 2)
    assert names(stocked) == ["alpha", "beta"]


# -- the OS keyring, unreachable -------------------------------------------------------------------------
@pytest.mark.keyring
def test_keyring_slot_with_the_keyring_unreachable_exits_3_naming_the_other_slots(
        cli, home, secret_service, tmp_path, expect_error, with_fd):
    created = cli("init", "--passphrase-stdin", "--keyring", input="a passphrase", env=secret_service)
    assert created.returncode == 0, created.err
    assert cli("add", "api", input="value", env=secret_service).returncode == 0
    before = with_fd(cli, "a passphrase", "list", "--json", env=secret_service).out
    dead = {**secret_service, "DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/no-such-bus"}
    probe = subprocess.run([sys.executable, "-c", "import keyring; keyring.get_password('aegis-vault', 'x')"],
                           env={**cli.env, **dead}, capture_output=True, timeout=60)
    assert probe.returncode != 0, "the keyring still answers with a dead bus address: the test proves nothing"
    result = cli("get", "api", env=dead)
    line = expect_error(result, 3, mentions=("keyring",))
    assert "passphrase" in line and "recovery" in line
    assert "Error)" not in line  # says what is wrong, not an exception class name
    assert result.stdout == b""
    assert with_fd(cli, "a passphrase", "list", "--json", env=dead).out == before
    status = cli("status", "--json", env=dead)
    assert status.returncode == 0, status.err
    assert json.loads(status.out)["unlocked"] is False


@pytest.mark.parametrize("seed", ["not base32 !!", "JBSWY3DPEHPK3P", "otpauth://totp/x?secret=JBSWY3DP",
                                  "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DP&counter=1",
                                  "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algorithm=MD5"])
def test_an_unusable_totp_seed_is_a_usage_error_not_an_unexpected_one(stocked, seed, expect_error):
    line = expect_error(stocked("add", "otp", "--kind", "totp", input=seed), 2)
    assert "TOTP" in line or "otpauth" in line
    assert seed not in line
    assert names(stocked) == ["alpha", "beta"]


# -- undecodable bytes in arguments ------------------------------------------------------------------
# A shell passes whatever bytes it was given; Python hands the ones that are not UTF-8 to
# the program as lone surrogates (surrogateescape). They cannot be a name, stored, audited,
# sent to the broker or shown in a pop-up, so every such argument is refused up front with
# one line that says which argument, without echoing it (it may be a secret typed by mistake).
BAD = b"\xff"  # never valid in UTF-8
CUT = b"caf\xc3"  # a UTF-8 sequence cut short


@pytest.mark.parametrize("argv", [
    [b"get", BAD],
    [b"get", b"al" + BAD + b"pha"],
    [b"get", CUT],
    [b"get", b"alpha", b"--reason", BAD],
    [b"--debug", b"get", BAD],
    [b"add", BAD],
    [b"show", BAD],
    [b"rotate", BAD],
    [b"destroy", BAD],
    [b"grants", b"add", BAD],
    [b"list", b"--context", BAD],
    [b"run", b"--need", BAD, b"--", b"true"],
    [b"run", b"--", b"echo", BAD],
    [b"scan", BAD],
    [BAD],
], ids=lambda argv: " ".join(arg.decode("utf-8", "backslashreplace") for arg in argv))
def test_an_argument_with_undecodable_bytes_exits_2_with_one_line_naming_utf8_and_changes_nothing(
        stocked, snapshot, argv, expect_error):
    before = snapshot()
    result = stocked(*argv, input="from-stdin")
    line = expect_error(result, 2, mentions=("UTF-8", "argument"))
    assert "Error" not in line  # says what is wrong, not an exception's class name
    assert "\ufffd" not in result.err and "\\udc" not in result.err and "\\x" not in result.err  # not echoed
    assert result.stdout == b""
    assert snapshot() == before


def test_the_undecodable_argument_is_named_by_its_position_and_never_echoed(stocked, expect_error):
    line = expect_error(stocked("get", CANARY.encode() + BAD), 2)
    assert "argument 2" in line
    assert CANARY not in line
    line = expect_error(stocked("run", "--", "echo", "ok", BAD), 2)
    assert "argument 5" in line


def test_an_argument_with_undecodable_bytes_is_refused_before_a_running_broker_is_asked(stocked, expect_error):
    """The ``get NAME`` fast path (straight to a running broker) is behind the same check."""
    import shutil

    from tests.support.scripted_broker import VALUE, ScriptedBroker, broker_socket_for

    runtime, path = broker_socket_for(stocked.env["AEGIS_VAULT_HOME"])
    broker = ScriptedBroker(path)
    agent = {"XDG_RUNTIME_DIR": runtime, "AEGIS_VAULT_KEY": None}
    try:
        assert stocked("get", "alpha", env=agent).stdout == VALUE  # the broker does answer
        result = stocked("get", BAD, env=agent)
        expect_error(result, 2, mentions=("UTF-8", "argument 2"))
        assert result.stdout == b""
        assert len(broker.requests) == 1
    finally:
        broker.close()
        shutil.rmtree(runtime, ignore_errors=True)


GIT_HELPER = "import sys\nfrom aegis_tui.cli.git_credential import main\nsys.exit(main())\n"


@pytest.mark.parametrize("argv", [[b"get" + BAD], [b"get", BAD], [b"--debug" + BAD, b"get"], [CUT, b"get"]],
                         ids=lambda argv: " ".join(arg.decode("utf-8", "backslashreplace") for arg in argv))
def test_git_credential_aegis_refuses_an_argument_with_undecodable_bytes_in_one_line_with_exit_2(stocked, argv):
    proc = subprocess.run([sys.executable, "-c", GIT_HELPER, *argv], input=b"protocol=https\nhost=x.test\n\n",
                          capture_output=True, env=stocked.env, start_new_session=True, timeout=60)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2, (proc.returncode, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("git-credential-aegis: "), err
    assert "UTF-8" in lines[0] and "Traceback" not in err
    assert proc.stdout == b""
