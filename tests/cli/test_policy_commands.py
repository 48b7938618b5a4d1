"""``aegis-vault policy ...`` through the real CLI: a real vault (``AEGIS_VAULT_KEY``) and a
real policy file in a private ``XDG_CONFIG_HOME`` of each test."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest

VALUE = "sk_live_" + "7Hq2" * 6


def ok(result):  # type: ignore[no-untyped-def]
    assert result.returncode == 0, (result.returncode, result.err)
    return result


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "config"


@pytest.fixture
def policy_file(config: Path) -> Path:
    return config / "aegis-vault" / "policy.toml"


@pytest.fixture
def vault(env_vault, config: Path):  # type: ignore[no-untyped-def]
    """A vault holding ``stripe``, and the CLI reading its policy file from ``config``."""
    env_vault.env["XDG_CONFIG_HOME"] = str(config)
    ok(env_vault("add", "stripe", "--service", "Stripe", "--context", "acme/prod", input=VALUE))
    return env_vault


@pytest.fixture
def with_hook(vault):  # type: ignore[no-untyped-def]
    ok(vault("policy", "hook-add", "stripe", "--timeout", "45s", "--revoke-command", "/opt/revoke --key 'a b'",
             "--", "/opt/rotate", "--live"))
    return vault


def shown(cli) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(ok(cli("policy", "show", "stripe", "--json")).out)


def state(cli, policy_file: Path) -> tuple[dict, bytes | None]:  # type: ignore[no-untyped-def]
    """What a refused command must leave as it was: the credential's policy and the file."""
    return shown(cli), policy_file.read_bytes() if policy_file.exists() else None


# -- hooks -------------------------------------------------------------------------------------------
def test_hook_add_writes_a_private_policy_file_that_hooks_lists(with_hook, policy_file: Path) -> None:  # type: ignore[no-untyped-def]
    document = tomllib.loads(policy_file.read_text())
    assert document == {"hooks": {"stripe": {"rotate": ["/opt/rotate", "--live"],
                                             "revoke": ["/opt/revoke", "--key", "a b"], "timeout": "45s"}}}
    assert policy_file.stat().st_mode & 0o777 == 0o600
    assert policy_file.parent.stat().st_mode & 0o777 == 0o700
    listed = json.loads(ok(with_hook("policy", "hooks", "--json")).out)
    assert listed == [{"name": "stripe", "rotate": ["/opt/rotate", "--live"],
                       "revoke": ["/opt/revoke", "--key", "a b"], "timeout": 45.0}]
    lines = ok(with_hook("policy", "hooks")).out.splitlines()
    assert lines[0].split() == ["NAME", "ROTATE", "REVOKE", "TIMEOUT"]
    assert lines[1].split() == ["stripe", "/opt/rotate", "--live", "/opt/revoke", "--key", "'a", "b'", "45s"]


def test_hooks_on_a_missing_policy_file_lists_nothing(vault) -> None:  # type: ignore[no-untyped-def]
    assert json.loads(ok(vault("policy", "hooks", "--json")).out) == []
    result = ok(vault("policy", "hooks"))
    assert result.out == ""
    assert "no hooks in" in result.err


def test_hook_remove_takes_the_hook_out_of_the_file(with_hook, policy_file: Path) -> None:  # type: ignore[no-untyped-def]
    ok(with_hook("policy", "hook-add", "github", "--", "/opt/gh-rotate"))
    ok(with_hook("policy", "hook-remove", "stripe"))
    assert [hook["name"] for hook in json.loads(ok(with_hook("policy", "hooks", "--json")).out)] == ["github"]
    assert "stripe" not in policy_file.read_text()


# -- a credential's policy -------------------------------------------------------------------------------
def test_a_new_credential_shows_the_manual_policy(vault) -> None:  # type: ignore[no-untyped-def]
    summary = shown(vault)
    assert summary["policy"] == {"method": "manual"}
    assert summary["method"] == "manual"
    assert summary["rotation_days"] is None and summary["overlap_seconds"] == 86400
    assert summary["hook"] is None


def test_set_a_command_policy_with_period_and_overlap_then_show_it(with_hook, policy_file: Path) -> None:  # type: ignore[no-untyped-def]
    ok(with_hook("policy", "set", "acme/prod/stripe", "--every", "90d", "--overlap", "12h", "--command", "stripe"))
    summary = shown(with_hook)
    assert summary["rotation_days"] == 90 and summary["overlap_seconds"] == 43200
    assert summary["policy"] == {"method": "command", "hook": "stripe"}
    assert summary["hook_declared"] is True and summary["policy_file"] == str(policy_file)
    rows = {line.split(None, 1)[0]: line.split(None, 1)[1]
            for line in ok(with_hook("policy", "show", "stripe")).out.splitlines()}
    assert rows == {"credential": "stripe", "period": "90d", "overlap": "12h", "method": "command hook stripe",
                    "hook": f"stripe (declared in {policy_file})"}


def test_show_warns_when_the_policy_names_a_hook_removed_since(with_hook, policy_file: Path) -> None:  # type: ignore[no-untyped-def]
    ok(with_hook("policy", "set", "stripe", "--command", "stripe"))
    ok(with_hook("policy", "hook-remove", "stripe"))
    assert shown(with_hook)["hook_declared"] is False
    assert f"stripe (MISSING from {policy_file})" in ok(with_hook("policy", "show", "stripe")).out


def test_set_generate_then_manual_keeps_period_and_overlap(vault) -> None:  # type: ignore[no-untyped-def]
    ok(vault("policy", "set", "stripe", "--every", "12w", "--generate", "--length", "40", "--prefix", "sk_"))
    summary = shown(vault)
    assert summary["policy"] == {"method": "generate", "length": 40, "charset": "alnum", "prefix": "sk_"}
    assert summary["method"] == "generate 40 alnum, prefix sk_"
    assert summary["rotation_days"] == 84
    ok(vault("policy", "set", "stripe", "--manual"))
    assert shown(vault)["policy"] == {"method": "manual"}
    assert shown(vault)["rotation_days"] == 84
    ok(vault("policy", "set", "stripe", "--every", "0"))
    assert shown(vault)["rotation_days"] is None


def test_the_value_is_untouched_by_policy_changes(vault) -> None:  # type: ignore[no-untyped-def]
    ok(vault("policy", "set", "stripe", "--every", "30d", "--generate"))
    assert ok(vault("get", "stripe")).out.strip() == VALUE


# -- bad input: one line, non-zero, nothing changed ---------------------------------------------------------
@pytest.mark.parametrize("args, code, words", [
    (["set", "stripe", "--every", "36h"], 2, "not a whole number of days"),
    (["set", "stripe", "--every", "soon"], 2, "duration 'soon'"),
    (["set", "stripe", "--overlap=-3h"], 2, "duration '-3h'"),
    (["set", "stripe", "--command", "nope"], 2, "no hook named 'nope'"),
    (["set", "stripe", "--command", "../x"], 2, "a hook name"),
    (["set", "stripe", "--length", "40"], 2, "can only be used with --generate"),
    (["set", "stripe", "--generate", "--length", "3"], 2, "from 8 to 4096"),
    (["set", "stripe", "--generate", "--charset", "emoji"], 2, "unknown character set"),
    (["set", "stripe", "--generate", "--prefix", "a b"], 2, "a prefix"),
    (["set", "stripe", "--manual", "--generate"], 2, "not allowed with"),
    (["set", "stripe"], 2, "nothing to change"),
    (["set", "nobody", "--manual"], 4, "no credential matches"),
    (["show", "nobody"], 4, "no credential matches"),
    (["hook-add", "stripe", "--", "/opt/other"], 7, "already exists"),
    (["hook-add", "bad name", "--", "/opt/x"], 2, "a hook name"),
    (["hook-add", "slow", "--timeout", "2h", "--", "/opt/x"], 2, "at most 3600 seconds"),
    (["hook-add", "slow", "--timeout", "0", "--", "/opt/x"], 2, "more than 0"),
    (["hook-add", "quote", "--revoke-command", "/opt/x 'open", "--", "/opt/x"], 2, "--revoke-command"),
    (["hook-add", "empty", "--revoke-command", "", "--", "/opt/x"], 2, "--revoke-command needs a command"),
    (["hook-add", "nocommand"], 2, "required"),
    (["hook-remove", "nope"], 2, "no hook named 'nope'"),
])
def test_bad_input_is_one_line_non_zero_and_changes_nothing(with_hook, policy_file: Path, expect_error,  # type: ignore[no-untyped-def]
                                                            args: list[str], code: int, words: str) -> None:
    ok(with_hook("policy", "set", "stripe", "--every", "30d", "--command", "stripe"))
    before = state(with_hook, policy_file)
    expect_error(with_hook("policy", *args), code, mentions=(words,))
    assert state(with_hook, policy_file) == before


def test_a_policy_file_others_can_write_is_refused_in_one_line(with_hook, policy_file: Path, expect_error) -> None:  # type: ignore[no-untyped-def]
    os.chmod(policy_file, 0o666)
    before = policy_file.read_bytes()
    expect_error(with_hook("policy", "hooks"), 5, mentions=("writable by group or others", "chmod go-w"))
    expect_error(with_hook("policy", "hook-add", "other", "--", "/opt/x"), 5, mentions=("chmod go-w",))
    assert policy_file.read_bytes() == before


def test_a_broken_policy_file_is_named_in_one_line(vault, policy_file: Path, expect_error) -> None:  # type: ignore[no-untyped-def]
    policy_file.parent.mkdir(parents=True, mode=0o700)
    policy_file.write_text("[hooks.stripe\n")
    os.chmod(policy_file, 0o600)
    expect_error(vault("policy", "hooks"), 2, mentions=(str(policy_file), "not valid TOML"))
    expect_error(vault("policy", "set", "stripe", "--command", "stripe"), 2, mentions=("not valid TOML",))
    assert shown(vault)["policy"] == {"method": "manual"}
