"""Every ``aegis-vault`` command, end to end, through the real CLI in a subprocess.

The vaults here use the fast test KDF (``AEGIS_VAULT_INSECURE_FAST_KDF=1`` from the
shared ``cli`` fixture). Passphrases reach the CLI on an inherited pipe
(``--passphrase-fd``); credential values on stdin.
"""

from __future__ import annotations

import json
import re
import stat
import string

import pytest

import aegis_tui
from aegis_tui.core.errors import EXIT_CODES

PASSPHRASE = "correct horse battery staple"  # the pass_vault fixture's passphrase
RECOVERY_RE = re.compile(r"[A-Z2-7]{5}(?:-[A-Z2-7]{5}){7}")

KINDS = ["api_key", "access_token", "password", "connection_string", "ssh_key", "certificate", "totp", "secret"]
EXPORT_KEYS = {"timestamp", "session_id", "actor", "operation", "target", "context", "risk_level", "flagged", "outcome"}


def ok(result):  # type: ignore[no-untyped-def]
    assert result.returncode == 0, (result.returncode, result.err)
    return result


def listed(vault_cli, *args: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(ok(vault_cli("list", "--json", *args)).out)


# -- init --------------------------------------------------------------------------------
def test_init_passphrase_stdin_creates_a_private_vault_that_the_passphrase_opens(pass_vault):
    mode = stat.S_IMODE((pass_vault.home / "vault.db").stat().st_mode)
    assert mode == 0o600
    slots = ok(pass_vault.cli("slots", "list")).out
    assert "passphrase" in slots and "recovery" in slots
    ok(pass_vault.run("add", "first", input="v-first"))
    assert ok(pass_vault.run("get", "first")).stdout == b"v-first"


def test_init_passphrase_stdin_refuses_an_empty_passphrase_and_creates_nothing(cli, home, expect_error):
    result = cli("init", "--passphrase-stdin", input="")
    expect_error(result, 2)
    assert not (home / "vault.db").exists()


def test_init_no_passphrase_with_env_key_makes_env_and_recovery_slots_and_unlocks_with_the_key(env_vault):
    slots = ok(env_vault("slots", "list")).out
    assert re.search(r"\benv\b", slots) and "recovery" in slots
    assert "passphrase" not in slots
    ok(env_vault("add", "k", input="value-k"))
    assert ok(env_vault("get", "k")).stdout == b"value-k"
    without_key = env_vault("get", "k", env={"AEGIS_VAULT_KEY": None})
    assert without_key.returncode == 3


def test_init_no_passphrase_without_key_or_keyring_is_a_usage_error_and_creates_nothing(cli, home, expect_error):
    result = cli("init", "--no-passphrase")
    expect_error(result, 2, mentions=("AEGIS_VAULT_KEY",))
    assert not (home / "vault.db").exists()


def test_init_prints_the_recovery_key_once_on_stdout_and_no_other_command_shows_it(cli, with_fd, recovery_key):
    result = ok(cli("init", "--passphrase-stdin", input=PASSPHRASE))
    code = recovery_key(result.out)
    assert result.out.count(code) == 1
    assert code not in result.err
    for args in (("slots", "list"), ("status",), ("status", "--json")):
        later = with_fd(cli, PASSPHRASE, *args)
        assert code not in later.out + later.err


def test_init_over_an_existing_vault_is_refused_and_leaves_it_intact(pass_vault, snapshot):
    ok(pass_vault.run("add", "keep", input="kept"))
    before = snapshot()
    again = pass_vault.cli("init", "--passphrase-stdin", input="other passphrase")
    assert again.returncode == 2
    assert "already exists" in again.err
    assert snapshot() == before
    assert ok(pass_vault.run("get", "keep")).stdout == b"kept"


# -- add ---------------------------------------------------------------------------------
def test_add_accepts_every_kind_and_list_reports_it(env_vault):
    values = {kind: f"value-{kind}" for kind in KINDS} | {"totp": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}  # base32, 160 bits
    for kind in KINDS:
        ok(env_vault("add", f"cred-{kind}", "--kind", kind, input=values[kind]))
    by_name = {row["name"]: row for row in listed(env_vault)}
    for kind in KINDS:
        assert by_name[f"cred-{kind}"]["kind"] == kind
        assert ok(env_vault("get", f"cred-{kind}")).stdout == values[kind].encode()


def test_add_rejects_an_unknown_kind_with_exit_2(env_vault, expect_error):
    result = env_vault("add", "x", "--kind", "banana", input="v")
    expect_error(result, 2, mentions=("kind",))
    assert listed(env_vault) == []


def test_add_stores_every_metadata_option_and_show_reports_them(env_vault):
    ok(env_vault(
        "add", "gh-token", "--kind", "access_token", "--context", "acme/prod", "--service", "GitHub",
        "--tag", "ci", "--tag", "deploy", "--notes", "for the release bot", "--url", "https://github.com",
        "--expires", "2031-03-31", "--rotate-every", "90", "--field", "owner=ops", "--field", "scope=repo",
        input="ghp_metadata_value",
    ))
    shown = json.loads(ok(env_vault("show", "gh-token", "--json")).out)
    assert shown["name"] == "gh-token"
    assert shown["kind"] == "access_token"
    assert shown["context"] == "acme/prod"
    assert shown["reference"] == "aegis://acme/prod/gh-token"
    assert shown["service"] == "GitHub"
    assert sorted(shown["tags"]) == ["ci", "deploy"]
    assert shown["notes"] == "for the release bot"
    assert shown["url"] == "https://github.com"
    assert shown["expires"] == "2031-03-31"
    assert shown["rotation_period_days"] == 90
    assert shown["rotation"] in ("ok", "due")
    assert shown["fields"] == {"owner": "ops", "scope": "repo"}
    assert shown["version"] == 1 and shown["versions"] == 1
    added = ok(env_vault("add", "other", "--context", "acme/prod", input="x"))
    assert "aegis://acme/prod/other" in added.err


@pytest.mark.parametrize("bad", [["--expires", "next tuesday"], ["--field", "novalue"], ["--rotate-every", "0"],
                                 ["--context", "bad context!"], ["--tag", "has space"]])
def test_add_with_an_invalid_option_is_a_usage_error_and_adds_nothing(env_vault, bad, expect_error):
    result = env_vault("add", "x", *bad, input="v")
    expect_error(result, 2)
    assert listed(env_vault) == []


def test_add_reads_the_value_from_stdin_dropping_only_a_single_trailing_newline(env_vault):
    ok(env_vault("add", "one-line", input="abc\n"))
    ok(env_vault("add", "multi-line", input="-----BEGIN KEY-----\nAAAA\n-----END KEY-----\n"))
    ok(env_vault("add", "binary", input=bytes(range(1, 256))))
    ok(env_vault("add", "spaces", input="  padded  "))
    assert ok(env_vault("get", "one-line")).stdout == b"abc"
    assert ok(env_vault("get", "multi-line")).stdout == b"-----BEGIN KEY-----\nAAAA\n-----END KEY-----\n"
    assert ok(env_vault("get", "binary")).stdout == bytes(range(1, 256))
    assert ok(env_vault("get", "spaces")).stdout == b"  padded  "


@pytest.mark.parametrize(("charset", "alphabet"), [
    ("alnum", string.ascii_letters + string.digits),
    ("alpha", string.ascii_letters),
    ("digits", string.digits),
    ("hex", "0123456789abcdef"),
    ("symbols", string.ascii_letters + string.digits + "!#$%&*+-=?@^_~"),
    ("base64url", string.ascii_letters + string.digits + "-_"),
])
def test_add_generate_honours_length_charset_and_prefix(env_vault, charset, alphabet):
    ok(env_vault("add", "gen", "--generate", "--length", "40", "--charset", charset, "--prefix", "sk_"))
    value = ok(env_vault("get", "gen")).out
    assert value.startswith("sk_")
    body = value[3:]
    assert len(body) == 40
    assert set(body) <= set(alphabet)


def test_add_generate_makes_a_different_value_each_time_and_ignores_stdin(env_vault):
    ok(env_vault("add", "g1", "--generate", input="not-this"))
    ok(env_vault("add", "g2", "--generate"))
    first, second = ok(env_vault("get", "g1")).out, ok(env_vault("get", "g2")).out
    assert len(first) == 32 and len(second) == 32
    assert first != second and first != "not-this"


def test_add_generate_with_a_too_short_length_is_a_usage_error(env_vault, expect_error):
    expect_error(env_vault("add", "g", "--generate", "--length", "3"), 2)
    assert listed(env_vault) == []


# -- get ---------------------------------------------------------------------------------
def test_get_prints_only_the_value_with_no_trailing_newline_when_not_a_terminal(env_vault):
    ok(env_vault("add", "plain", input="just-the-value"))
    result = ok(env_vault("get", "plain"))
    assert result.stdout == b"just-the-value"
    assert "just-the-value" not in result.err


def test_get_resolves_name_context_slash_name_and_aegis_reference(env_vault):
    ok(env_vault("add", "db", "--context", "acme/prod", input="prod-db-value"))
    for reference in ("db", "acme/prod/db", "aegis://acme/prod/db"):
        assert ok(env_vault("get", reference)).stdout == b"prod-db-value", reference


def test_get_with_the_wrong_context_is_not_found_exit_4(env_vault, expect_error):
    ok(env_vault("add", "db", "--context", "acme/prod", input="prod-db-value"))
    for reference in ("acme/dev/db", "aegis://other/db"):
        result = env_vault("get", reference)
        expect_error(result, 4)
        assert result.stdout == b""


def test_get_of_an_unknown_name_is_not_found_exit_4(env_vault, expect_error):
    expect_error(env_vault("get", "nope"), 4, mentions=("nope",))


# -- list --------------------------------------------------------------------------------
def _three_credentials(vault_cli) -> None:  # type: ignore[no-untyped-def]
    ok(vault_cli("add", "gh", "--kind", "access_token", "--service", "GitHub", "--context", "acme/prod",
                 input="v-gh"))
    ok(vault_cli("add", "stripe", "--kind", "api_key", "--service", "Stripe", "--context", "acme/dev",
                 input="v-stripe"))
    ok(vault_cli("add", "home-wifi", "--kind", "password", "--context", "personal", input="v-wifi"))


def test_list_text_shows_a_header_and_one_row_per_credential(env_vault):
    _three_credentials(env_vault)
    lines = ok(env_vault("list")).out.splitlines()
    assert lines[0].split() == ["NAME", "SERVICE", "KIND", "CONTEXT", "STATUS", "ROTATION", "VERSION"]
    assert sorted(line.split()[0] for line in lines[1:]) == ["gh", "home-wifi", "stripe"]


def test_list_json_is_one_array_of_summaries(env_vault):
    _three_credentials(env_vault)
    rows = listed(env_vault)
    assert {row["name"] for row in rows} == {"gh", "stripe", "home-wifi"}
    for row in rows:
        assert {"name", "reference", "kind", "service", "context", "status", "version"} <= set(row)
        assert row["status"] == "active" and row["version"] == 1


def test_list_filters_by_context_service_status_and_kind(env_vault):
    _three_credentials(env_vault)
    ok(env_vault("revoke", "stripe"))

    def names(*args: str) -> set[str]:
        return {row["name"] for row in listed(env_vault, *args)}

    assert names("--context", "acme") == {"gh", "stripe"}
    assert names("--context", "acme/prod") == {"gh"}
    assert names("--service", "stripe") == {"stripe"}
    assert names("--status", "revoked") == {"stripe"}
    assert names("--status", "active") == {"gh", "home-wifi"}
    assert names("--kind", "password") == {"home-wifi"}
    assert names("--context", "acme", "--kind", "access_token") == {"gh"}
    assert names("--context", "nowhere") == set()


# -- show --------------------------------------------------------------------------------
def test_show_prints_metadata_but_never_the_value(env_vault):
    ok(env_vault("add", "api", "--service", "Acme", "--notes", "line one\nline two", input="VALUE-not-shown-7Q"))
    text = ok(env_vault("show", "api"))
    as_json = ok(env_vault("show", "api", "--json"))
    for result in (text, as_json):
        assert "VALUE-not-shown-7Q" not in result.out + result.err
    assert "Acme" in text.out and "line two" in text.out and "hidden" in text.out
    assert json.loads(as_json.out)["service"] == "Acme"


# -- rotate and history -------------------------------------------------------------------
def test_rotate_from_stdin_makes_a_new_current_version_and_keeps_the_old_one_by_number(env_vault):
    ok(env_vault("add", "api", input="old-value"))
    result = ok(env_vault("rotate", "api", input="new-value"))
    assert "v2" in result.err
    assert ok(env_vault("get", "api")).stdout == b"new-value"
    assert ok(env_vault("get", "api", "--version", "1")).stdout == b"old-value"
    assert json.loads(ok(env_vault("show", "api", "--json")).out)["version"] == 2


def test_rotate_generate_with_overlap_keeps_the_previous_version_valid_for_the_window(env_vault):
    ok(env_vault("add", "api", input="old-value"))
    ok(env_vault("rotate", "api", "--generate", "--length", "24", "--overlap", "2h"))
    new = ok(env_vault("get", "api")).out
    assert len(new) == 24 and new != "old-value"
    versions = json.loads(ok(env_vault("history", "api", "--json")).out)
    states = {v["version"]: v for v in versions}
    assert states[2]["state"] == "current" and states[2]["retires"] is None
    assert states[1]["state"] == "previous" and states[1]["retires"] is not None


def test_rotate_with_overlap_zero_retires_the_previous_version_at_once(env_vault):
    ok(env_vault("add", "api", input="old-value"))
    ok(env_vault("rotate", "api", "--overlap", "0", input="new-value"))
    states = {v["version"]: v["state"] for v in json.loads(ok(env_vault("history", "api", "--json")).out)}
    assert states == {1: "retired", 2: "current"}


def test_rotate_with_a_malformed_overlap_is_a_usage_error_and_changes_nothing(env_vault, expect_error):
    ok(env_vault("add", "api", input="old-value"))
    expect_error(env_vault("rotate", "api", "--overlap", "soon", input="new-value"), 2)
    assert ok(env_vault("get", "api")).stdout == b"old-value"


def test_history_text_lists_versions_newest_first(env_vault):
    ok(env_vault("add", "api", input="v1"))
    ok(env_vault("rotate", "api", input="v2"))
    ok(env_vault("rotate", "api", input="v3"))
    lines = ok(env_vault("history", "api")).out.splitlines()
    assert lines[0].split()[:2] == ["VERSION", "STATE"]
    assert [line.split()[0] for line in lines[1:]] == ["v3", "v2", "v1"]
    assert lines[1].split()[1] == "current"


# -- revoke and destroy --------------------------------------------------------------------
def test_revoke_makes_get_refuse_with_exit_8_and_list_shows_revoked(env_vault, expect_error):
    ok(env_vault("add", "api", input="value"))
    ok(env_vault("revoke", "api", "--reason", "leaked in a log"))
    result = env_vault("get", "api")
    expect_error(result, 8, mentions=("revoked",))
    assert result.stdout == b""
    assert listed(env_vault)[0]["status"] == "revoked"
    expect_error(env_vault("rotate", "api", input="new"), 8)


def test_destroy_without_yes_and_without_a_terminal_exits_2_and_deletes_nothing(env_vault, expect_error):
    ok(env_vault("add", "api", input="value"))
    result = env_vault("destroy", "api")
    expect_error(result, 2, mentions=("--yes",))
    assert ok(env_vault("get", "api")).stdout == b"value"


def test_destroy_with_yes_deletes_the_credential_and_its_history(env_vault, expect_error):
    ok(env_vault("add", "api", input="value"))
    ok(env_vault("rotate", "api", input="value2"))
    ok(env_vault("destroy", "api", "--yes"))
    assert listed(env_vault) == []
    expect_error(env_vault("get", "api"), 4)
    expect_error(env_vault("history", "api"), 4)
    ok(env_vault("add", "api", input="fresh"))  # the name is free again
    assert ok(env_vault("get", "api")).stdout == b"fresh"


# -- passwd and slots ------------------------------------------------------------------------
def test_passwd_replaces_the_passphrase_old_one_fails_with_exit_3_new_one_works(pass_vault, expect_error):
    ok(pass_vault.run("add", "api", input="value"))
    ok(pass_vault.run("passwd", "--new-passphrase-stdin", input="a brand new passphrase"))
    old = pass_vault.run("get", "api")
    expect_error(old, 3, mentions=("passphrase",))
    assert old.stdout == b""
    assert ok(pass_vault.run("get", "api", passphrase="a brand new passphrase")).stdout == b"value"


def test_slots_add_passphrase_env_and_recovery_each_open_the_vault(pass_vault, with_fd, recovery_key):
    ok(pass_vault.run("add", "api", input="value"))
    ok(pass_vault.run("slots", "add", "passphrase", "--new-passphrase-stdin", input="second passphrase"))
    assert ok(pass_vault.run("get", "api", passphrase="second passphrase")).stdout == b"value"
    assert ok(pass_vault.run("get", "api")).stdout == b"value"

    env_slot = ok(pass_vault.run("slots", "add", "env"))
    match = re.search(r"AEGIS_VAULT_KEY=([0-9a-f]{64})", env_slot.out)
    assert match, env_slot.out
    assert ok(pass_vault.cli("get", "api", env={"AEGIS_VAULT_KEY": match.group(1)})).stdout == b"value"

    recovery_slot = ok(pass_vault.run("slots", "add", "recovery"))
    code = recovery_key(recovery_slot.out)
    assert code != pass_vault.recovery
    assert ok(with_fd(pass_vault.cli, code, "--recovery", "get", "api")).stdout == b"value"

    kinds = [line.split()[1] for line in ok(pass_vault.cli("slots", "list")).out.splitlines()[1:]]
    assert sorted(kinds) == ["env", "passphrase", "passphrase", "recovery", "recovery"]


def test_slots_remove_deletes_a_slot_and_refuses_the_last_one_with_exit_8(pass_vault, expect_error, with_fd):
    def slot_ids() -> dict[str, str]:
        lines = ok(pass_vault.cli("slots", "list")).out.splitlines()[1:]
        return {line.split()[1]: line.split()[0] for line in lines}

    ids = slot_ids()
    assert set(ids) == {"passphrase", "recovery"}
    ok(pass_vault.run("slots", "remove", ids["recovery"]))
    assert set(slot_ids()) == {"passphrase"}
    recovery = with_fd(pass_vault.cli, pass_vault.recovery, "--recovery", "list")
    assert recovery.returncode == 3
    last = pass_vault.run("slots", "remove", ids["passphrase"])
    expect_error(last, 8, mentions=("last",))
    assert set(slot_ids()) == {"passphrase"}
    expect_error(pass_vault.run("slots", "remove", "deadbeef"), 4)


# -- audit -------------------------------------------------------------------------------------
def test_audit_tail_shows_the_latest_operations(env_vault):
    ok(env_vault("add", "api", input="value"))
    ok(env_vault("get", "api"))
    lines = ok(env_vault("audit", "tail", "-n", "5")).out.splitlines()
    assert len(lines) == 5  # unlock, add, unlock, read, and the tail's own unlock
    assert any(" add " in line and "api" in line for line in lines)
    assert any(" read " in line and "api" in line for line in lines)


def test_audit_note_writes_the_owners_words_literally_and_needs_the_vault_key(env_vault, expect_error):
    ok(env_vault("audit", "note", "rotated the deploy key by hand \x1b[2J"))
    notes = [json.loads(line) for line in ok(env_vault("audit", "export", "--jsonl")).out.splitlines()
             if json.loads(line)["operation"] == "note"]
    assert [n["detail"]["text"] for n in notes] == ["rotated the deploy key by hand \u241b[2J"]
    expect_error(env_vault("audit", "note", "an agent's entry", env={"AEGIS_VAULT_KEY": None}), 3)


def test_audit_verify_reports_an_intact_log_with_exit_0(env_vault):
    ok(env_vault("add", "api", input="value"))
    result = ok(env_vault("audit", "verify", env={"AEGIS_VAULT_KEY": None}))
    assert "intact" in result.out


def test_audit_export_jsonl_is_one_json_object_per_line_with_the_documented_keys(env_vault, tmp_path):
    ok(env_vault("add", "api", "--context", "acme", input="value"))
    ok(env_vault("get", "api"))
    result = ok(env_vault("audit", "export", "--jsonl"))
    entries = [json.loads(line) for line in result.out.splitlines()]
    assert len(entries) >= 4
    for entry in entries:
        assert EXPORT_KEYS <= set(entry), set(entry) ^ EXPORT_KEYS
        assert entry["risk_level"] in ("low", "medium", "high")
        assert isinstance(entry["flagged"], bool)
    ops = [(e["operation"], e["target"], e["context"]) for e in entries]
    assert ("add", "api", "acme") in ops and ("read", "api", "acme") in ops
    out_file = tmp_path / "audit.jsonl"
    ok(env_vault("audit", "export", "--jsonl", "-o", str(out_file)))
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    assert len(out_file.read_text().splitlines()) >= len(entries)


# -- import-env --------------------------------------------------------------------------------
DOTENV = (
    "# app settings\n"
    "DATABASE_URL=postgres://app:db-pass-4242@db.internal/app\n"
    "export STRIPE_API_KEY=sk_live_import_5151\n"
    "DEBUG=true\n"
    "PORT=8080\n"
)


def test_import_env_stores_secrets_and_prints_a_template_of_references(env_vault, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(DOTENV)
    result = ok(env_vault("import-env", str(env_file), "--context", "acme/dev"))
    template = result.out
    assert "DATABASE_URL=aegis://acme/dev/DATABASE_URL" in template.splitlines()
    assert "STRIPE_API_KEY=aegis://acme/dev/STRIPE_API_KEY" in template.splitlines()
    assert "DEBUG=true" in template.splitlines() and "PORT=8080" in template.splitlines()
    assert "db-pass-4242" not in template + result.err and "sk_live_import_5151" not in template + result.err
    assert env_file.exists()  # no terminal and no --delete: the file stays
    assert ok(env_vault("get", "aegis://acme/dev/STRIPE_API_KEY")).stdout == b"sk_live_import_5151"
    assert ok(env_vault("get", "DATABASE_URL")).stdout == b"postgres://app:db-pass-4242@db.internal/app"
    assert {row["name"] for row in listed(env_vault)} == {"DATABASE_URL", "STRIPE_API_KEY"}


def test_import_env_delete_removes_the_plaintext_file(env_vault, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(DOTENV)
    ok(env_vault("import-env", str(env_file), "--delete"))
    assert not env_file.exists()
    assert len(listed(env_vault)) == 2


def test_import_env_with_a_name_collision_imports_nothing_and_keeps_the_file(env_vault, tmp_path, expect_error):
    ok(env_vault("add", "STRIPE_API_KEY", input="existing-value"))
    env_file = tmp_path / ".env"
    env_file.write_text(DOTENV)
    result = env_vault("import-env", str(env_file), "--delete")
    expect_error(result, 7, mentions=("STRIPE_API_KEY",))
    assert result.out == ""
    assert env_file.exists()
    assert {row["name"] for row in listed(env_vault)} == {"STRIPE_API_KEY"}
    assert ok(env_vault("get", "STRIPE_API_KEY")).stdout == b"existing-value"


# -- status, keygen, recovery, version, help -------------------------------------------------
def test_status_json_reports_counts_when_it_can_unlock_and_stays_locked_otherwise(pass_vault):
    ok(pass_vault.run("add", "a", input="1"))
    ok(pass_vault.run("add", "b", input="2"))
    ok(pass_vault.run("revoke", "b"))
    locked = json.loads(ok(pass_vault.cli("status", "--json")).out)
    assert locked["unlocked"] is False
    assert locked["vault"].endswith("vault.db")
    assert re.fullmatch(r"[0-9a-f]{32}", locked["vault_id"])
    assert sorted(locked["slots"]) == ["passphrase", "recovery"]
    assert locked["audit_entries"] > 0
    assert "credentials" not in locked
    unlocked = json.loads(ok(pass_vault.run("status", "--json")).out)
    assert unlocked["unlocked"] is True
    assert unlocked["credentials"] == 2
    assert unlocked["by_status"] == {"active": 1, "revoked": 1}
    text = ok(pass_vault.run("status")).out
    assert re.search(r"^credentials\s+2$", text, re.M)


def test_keygen_prints_a_fresh_64_hex_key_that_init_accepts(cli):
    first = ok(cli("keygen")).out
    second = ok(cli("keygen")).out
    assert re.fullmatch(r"[0-9a-f]{64}\n", first) and re.fullmatch(r"[0-9a-f]{64}\n", second)
    assert first != second
    key = first.strip()
    ok(cli("init", "--no-passphrase", env={"AEGIS_VAULT_KEY": key}))
    ok(cli("add", "x", input="y", env={"AEGIS_VAULT_KEY": key}))
    assert ok(cli("get", "x", env={"AEGIS_VAULT_KEY": key})).stdout == b"y"


def test_recovery_unlock_reads_the_recovery_key_from_the_passphrase_fd(pass_vault, expect_error, with_fd):
    ok(pass_vault.run("add", "api", input="value"))
    assert RECOVERY_RE.fullmatch(pass_vault.recovery)
    result = ok(with_fd(pass_vault.cli, pass_vault.recovery, "--recovery", "get", "api"))
    assert result.stdout == b"value"
    lowercase = ok(with_fd(pass_vault.cli, pass_vault.recovery.lower(), "--recovery", "get", "api"))
    assert lowercase.stdout == b"value"
    wrong = with_fd(pass_vault.cli, "AAAAA-" * 7 + "AAAAA", "--recovery", "get", "api")
    expect_error(wrong, 3, mentions=("recovery",))
    not_a_code = with_fd(pass_vault.cli, PASSPHRASE, "--recovery", "get", "api")
    expect_error(not_a_code, 3)


def test_version_prints_the_package_version(cli):
    result = ok(cli("--version"))
    assert result.out.strip() == f"aegis-vault {aegis_tui.__version__}"


def test_help_lists_every_command_and_the_exit_codes(cli):
    result = ok(cli("--help"))
    for command in ("init", "add", "get", "list", "show", "rotate", "revoke", "destroy", "history", "passwd",
                    "slots", "audit", "import-env", "status", "keygen"):
        assert re.search(rf"^\s+{re.escape(command)}\s", result.out, re.M), command
    for code in EXIT_CODES:
        assert re.search(rf"^\s+{code}\s", result.out, re.M), code


@pytest.mark.parametrize("command", ["add", "get", "rotate", "slots", "audit", "import-env"])
def test_each_command_has_its_own_help(cli, command):
    result = ok(cli(command, "--help"))
    assert result.out.startswith("usage: aegis-vault " + command)
