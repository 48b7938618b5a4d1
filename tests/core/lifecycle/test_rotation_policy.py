"""Rotation policies and the policy file: validation, round trips, refusals. Real files, no mocks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aegis_tui.core.errors import UsageError, VaultFileError
from aegis_tui.core.lifecycle.policy import (
    Hook,
    PolicyFile,
    RotationPolicy,
    load_policy_file,
    policy_path,
    save_policy_file,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    private = tmp_path / "config"
    private.mkdir(mode=0o700)
    os.chmod(private, 0o700)
    return private


def write(path: Path, text: str, mode: int = 0o600) -> str:
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


# -- RotationPolicy --------------------------------------------------------------------------------
def test_an_empty_mapping_is_the_manual_policy() -> None:
    policy = RotationPolicy.from_mapping({})
    assert policy == RotationPolicy()
    assert policy.to_dict() == {"method": "manual"}
    assert policy.describe() == "manual"


@pytest.mark.parametrize("data", [
    {"method": "manual"},
    {"method": "generate", "length": 40, "charset": "alnum", "prefix": "sk_"},
    {"method": "generate", "length": 8, "charset": "hex", "prefix": ""},
    {"method": "command", "hook": "stripe"},
])
def test_a_policy_round_trips_through_its_dict(data: dict[str, object]) -> None:
    assert RotationPolicy.from_mapping(data).to_dict() == data
    assert RotationPolicy.from_mapping(RotationPolicy.from_mapping(data).to_dict()) == RotationPolicy.from_mapping(data)


def test_to_dict_keeps_only_the_keys_the_method_uses() -> None:
    policy = RotationPolicy.from_mapping({"method": "command", "hook": "aws.iam-1", "length": 64, "prefix": "x"})
    assert policy.to_dict() == {"method": "command", "hook": "aws.iam-1"}
    assert RotationPolicy.from_mapping({"method": "manual", "hook": "stripe"}).to_dict() == {"method": "manual"}


@pytest.mark.parametrize("policy, text", [
    (RotationPolicy("generate", 40, "alnum", "sk_"), "generate 40 alnum, prefix sk_"),
    (RotationPolicy("generate", 16, "hex"), "generate 16 hex"),
    (RotationPolicy("command", hook="stripe"), "command hook stripe"),
    (RotationPolicy(), "manual"),
])
def test_describe_is_a_short_human_text(policy: RotationPolicy, text: str) -> None:
    assert policy.describe() == text


@pytest.mark.parametrize("data, words", [
    ({"method": "manual", "when": "monthly"}, "unknown key(s) when"),
    ({"method": "rotate"}, "method must be one of manual, generate, command"),
    ({"method": 3}, "method must be one of"),
    ({"method": "generate", "length": 7}, "length must be a whole number from 8 to 4096"),
    ({"method": "generate", "length": 4097}, "from 8 to 4096"),
    ({"method": "generate", "length": "40"}, "length must be a whole number"),
    ({"method": "generate", "length": True}, "length must be a whole number"),
    ({"method": "generate", "charset": "emoji"}, "unknown character set"),
    ({"method": "generate", "charset": ["alnum"]}, "unknown character set"),
    ({"method": "generate", "prefix": "sk live"}, "a prefix is at most 32 printable characters without spaces"),
    ({"method": "generate", "prefix": "x" * 33}, "at most 32"),
    ({"method": "generate", "prefix": "sk\x1b["}, "printable"),
    ({"method": "command"}, "method command needs the name of a hook"),
    ({"method": "command", "hook": "../evil"}, "a hook name is 1 to 64 letters"),
    ({"method": "command", "hook": "-rf"}, "a hook name"),
    ({"method": "command", "hook": "h" * 65}, "a hook name"),
])
def test_an_invalid_policy_is_refused_with_one_clear_line(data: dict[str, object], words: str) -> None:
    with pytest.raises(UsageError) as caught:
        RotationPolicy.from_mapping(data)
    message = str(caught.value)
    assert words in message
    assert "\n" not in message


def test_credentials_edit_stores_only_a_validated_policy(creds, kit) -> None:  # type: ignore[no-untyped-def]
    from aegis_tui.core.secret import Secret

    creds.add("stripe", Secret("sk_live_" + "q" * 24))
    stored = creds.edit("stripe", rotation_policy={"method": "generate", "length": 40, "hook": "ignored"})
    assert dict(stored.rotation_policy) == {"method": "generate", "length": 40, "charset": "alnum", "prefix": ""}
    with pytest.raises(UsageError):
        creds.edit("stripe", rotation_policy={"method": "command"})
    assert dict(creds.find("stripe").rotation_policy) == dict(stored.rotation_policy)


# -- the policy file ---------------------------------------------------------------------------------
def test_the_policy_file_lives_in_the_config_folder_and_honours_xdg_config_home(tmp_path: Path) -> None:
    assert policy_path({"XDG_CONFIG_HOME": str(tmp_path)}) == str(tmp_path / "aegis-vault" / "policy.toml")


def test_a_missing_policy_file_is_an_empty_policy_that_recovers_automatically(folder: Path) -> None:
    policy = load_policy_file(str(folder / "policy.toml"))
    assert dict(policy.hooks) == {}
    assert policy.auto_recover is True
    assert policy.path == str(folder / "policy.toml")


def test_a_policy_file_is_read_with_durations_and_numbers_as_timeouts(folder: Path) -> None:
    path = write(folder / "policy.toml", """
[hooks.stripe]
rotate = ["/usr/local/bin/stripe-rotate", "--live"]
revoke = ["/usr/local/bin/stripe-revoke"]
timeout = "2m"

[hooks.github]
rotate = ["gh-rotate"]
timeout = 7.5

[hooks.plain]
rotate = ["plain"]
""")
    policy = load_policy_file(path)
    assert policy.hook("stripe") == Hook("stripe", ("/usr/local/bin/stripe-rotate", "--live"),
                                         ("/usr/local/bin/stripe-revoke",), 120.0)
    assert policy.hook("github") == Hook("github", ("gh-rotate",), (), 7.5)
    assert policy.hook("plain").timeout == 30.0
    assert policy.auto_recover is True


def test_compromise_auto_rotate_false_turns_automatic_recovery_off(folder: Path) -> None:
    path = write(folder / "policy.toml", "[compromise]\nauto_rotate = false\n")
    assert load_policy_file(path).auto_recover is False


def test_save_then_load_gives_the_same_policy_written_private(folder: Path) -> None:
    path = str(folder / "sub" / "policy.toml")
    policy = (PolicyFile(path=path)
              .with_hook(Hook("stripe", ("/bin/rotate", "a b"), ("/bin/revoke",), 45.0))
              .with_hook(Hook("half", ("/bin/half",), timeout=0.5))
              ._replace(auto_recover=False))
    save_policy_file(policy)
    loaded = load_policy_file(path)
    assert loaded == policy
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(folder / "sub").st_mode & 0o777 == 0o700
    assert 'timeout = "45s"' in Path(path).read_text()
    assert [name for name in os.listdir(folder / "sub")] == ["policy.toml"]  # no temp file left


def test_without_hook_removes_it_and_a_missing_hook_is_named_with_the_file(folder: Path) -> None:
    path = str(folder / "policy.toml")
    policy = PolicyFile(path=path).with_hook(Hook("stripe", ("/bin/rotate",)))
    assert dict(policy.without_hook("stripe").hooks) == {}
    with pytest.raises(UsageError, match=f"no hook named 'github' in {path}"):
        policy.hook("github")
    with pytest.raises(UsageError, match="no hook named 'github'"):
        policy.without_hook("github")


def test_an_invalid_hook_is_refused_before_it_is_added(folder: Path) -> None:
    policy = PolicyFile(path=str(folder / "policy.toml"))
    with pytest.raises(UsageError, match="timeout must be more than 0"):
        policy.with_hook(Hook("slow", ("/bin/x",), timeout=0))
    with pytest.raises(UsageError, match="rotate must be a command"):
        policy.with_hook(Hook("empty", ()))
    with pytest.raises(UsageError, match="a hook name"):
        policy.with_hook(Hook("bad name", ("/bin/x",)))


def test_invalid_toml_is_one_line_naming_the_file(folder: Path) -> None:
    path = write(folder / "policy.toml", "[hooks.stripe\nrotate = 3\n")
    with pytest.raises(UsageError) as caught:
        load_policy_file(path)
    assert str(caught.value).startswith(f"{path} is not valid TOML")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("text, words", [
    ("hooks = 3\n", "hooks must be a table"),
    ("[rotation]\nevery = 3\n", "unknown key(s) in the file: rotation"),
    ("[hooks]\nstripe = 1\n", "[hooks.stripe] must be a table"),
    ("[hooks.stripe]\ntimeout = \"30s\"\n", "[hooks.stripe] needs rotate"),
    ("[hooks.stripe]\nrotate = \"/bin/rotate --live\"\n", "rotate must be a command as a list"),
    ("[hooks.stripe]\nrotate = []\n", "rotate must be a command as a list"),
    ("[hooks.stripe]\nrotate = [\"/bin/x\", 3]\n", "rotate must be a command as a list"),
    ("[hooks.stripe]\nrotate = [\"/bin/x\"]\nrevoke = []\n", "revoke must be a command as a list"),
    ("[hooks.stripe]\nrotate = [\"/bin/x\"]\ntimeout = \"soon\"\n", "duration 'soon' is not like"),
    ("[hooks.stripe]\nrotate = [\"/bin/x\"]\ntimeout = -1\n", "timeout must be more than 0"),
    ("[hooks.stripe]\nrotate = [\"/bin/x\"]\ntimeout = \"2h\"\n", "at most 3600 seconds"),
    ("[hooks.stripe]\nrotate = [\"/bin/x\"]\ntimeout = true\n", "timeout must be more than 0"),
    ("[hooks.stripe]\nrotate = [\"/bin/x\"]\nshell = true\n", "unknown key(s) in [hooks.stripe]: shell"),
    ("[hooks.\"a b\"]\nrotate = [\"/bin/x\"]\n", "[hooks.a b]: a hook name"),
    ("[compromise]\nauto_rotate = \"yes\"\n", "auto_rotate must be true or false"),
    ("[compromise]\nauto_revoke = true\n", "unknown key(s) in [compromise]: auto_revoke"),
])
def test_a_policy_file_of_the_wrong_shape_is_one_line_naming_file_and_problem(folder: Path, text: str,
                                                                              words: str) -> None:
    path = write(folder / "policy.toml", text)
    with pytest.raises(UsageError) as caught:
        load_policy_file(path)
    message = str(caught.value)
    assert message.startswith(path), message
    assert words in message
    assert "\n" not in message


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_a_policy_file_others_can_write_is_refused(folder: Path, mode: int) -> None:
    path = write(folder / "policy.toml", "[hooks.stripe]\nrotate = [\"/bin/x\"]\n", mode)
    with pytest.raises(VaultFileError, match=f"chmod go-w {path}"):
        load_policy_file(path)


def test_a_policy_file_in_a_folder_others_can_write_is_refused(folder: Path) -> None:
    path = write(folder / "policy.toml", "[hooks.stripe]\nrotate = [\"/bin/x\"]\n")
    os.chmod(folder, 0o777)
    try:
        with pytest.raises(VaultFileError, match="writable by group or others"):
            load_policy_file(path)
    finally:
        os.chmod(folder, 0o700)


def test_a_readable_but_not_writable_policy_file_is_accepted(folder: Path) -> None:
    path = write(folder / "policy.toml", "[hooks.stripe]\nrotate = [\"/bin/x\"]\n", 0o644)
    os.chmod(folder, 0o755)
    assert load_policy_file(path).hook("stripe").rotate == ("/bin/x",)


def test_saving_into_a_folder_others_can_write_is_refused_and_writes_nothing(folder: Path) -> None:
    os.chmod(folder, 0o777)
    path = str(folder / "policy.toml")
    try:
        with pytest.raises(VaultFileError):
            save_policy_file(PolicyFile(path=path).with_hook(Hook("stripe", ("/bin/x",))))
        assert os.listdir(folder) == []
    finally:
        os.chmod(folder, 0o700)
