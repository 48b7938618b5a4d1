"""The sandbox plan: what is hidden or read-only and why, the rules file, the wire form.

Real folders in tmp stand in for a user's home and project; nothing is mocked.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import aegis_tui
from aegis_tui.core.errors import UsageError
from aegis_tui.core.sandbox.plan import SandboxPlan, plan_sandbox, sandbox_env


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A home with the usual secret places, a vault, a project with .env files, a runtime folder."""
    home = tmp_path / "home"
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("HOME", str(home))  # the config folder is found from the process's home
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    (runtime / "aegis-vault").mkdir(mode=0o700)
    (runtime / "bus").write_text("")
    for folder in (".aws", ".config/gh", ".docker", ".secure", ".ssh", ".config/aegis-vault", ".local/share/aegis-vault",
                   "vaults/work"):
        (home / folder).mkdir(parents=True)
    for name in (".netrc", ".docker/config.json", ".ssh/id_ed25519", ".ssh/id_ed25519.pub", ".ssh/deploy",
                 ".ssh/deploy.pub", ".ssh/known_hosts", ".ssh/config", ".ssh/notes", "vaults/work/vault.db",
                 ".local/share/aegis-vault/vault.db"):
        (home / name).write_text("x")
    project = tmp_path / "project"
    for name in (".env", ".env.local", ".envrc", "api/.env.production", ".env.example", ".env.sample",
                 ".env.template", ".git/.env", "node_modules/pkg/.env", "venv/lib/.env"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("x")
    (project / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return {"home": home, "project": project, "runtime": runtime, "vault": home / "vaults/work/vault.db"}


def env_for(world: dict[str, Path], **more: str) -> dict[str, str]:
    return {"HOME": str(world["home"]), "XDG_RUNTIME_DIR": str(world["runtime"]), **more}


def plan_for(world: dict[str, Path], **kwargs: object) -> SandboxPlan:
    environ = kwargs.pop("environ", None) or env_for(world)
    return plan_sandbox(vault_path=str(world["vault"]), project_dir=str(world["project"]), environ=environ,
                        **kwargs)  # type: ignore[arg-type]


def hidden(plan: SandboxPlan) -> set[str]:
    return {path for path, _ in plan.hidden}


def test_the_vault_config_runtime_folder_and_bus_are_hidden(world: dict[str, Path]) -> None:
    plan = plan_for(world, environ=env_for(world, DBUS_SESSION_BUS_ADDRESS=f"unix:path={world['runtime']}/bus,guid=1"))
    home = world["home"]
    assert {str(home / "vaults/work"), str(home / ".local/share/aegis-vault"), str(home / ".config/aegis-vault"),
            str(world["runtime"] / "aegis-vault"), str(world["runtime"] / "bus")} <= hidden(plan)
    reasons = dict(plan.hidden)
    assert "vault" in reasons[str(home / "vaults/work")]
    assert "keyring" in reasons[str(world["runtime"] / "bus")]


def test_default_secret_places_and_private_ssh_keys_are_hidden_public_files_stay(world: dict[str, Path]) -> None:
    home = world["home"]
    found = hidden(plan_for(world))
    for name in (".aws", ".config/gh", ".netrc", ".docker/config.json", ".secure", ".ssh/id_ed25519", ".ssh/deploy"):
        assert str(home / name) in found, name
    for name in (".ssh", ".ssh/id_ed25519.pub", ".ssh/deploy.pub", ".ssh/known_hosts", ".ssh/config", ".ssh/notes"):
        assert str(home / name) not in found, name


def test_env_files_in_the_project_are_hidden_but_shared_examples_and_skipped_folders(world: dict[str, Path]) -> None:
    project = world["project"]
    env_files = {path for path in hidden(plan_for(world)) if path.startswith(str(project))}
    assert env_files == {str(project / name) for name in (".env", ".env.local", ".envrc", "api/.env.production")}


def test_only_existing_paths_are_planned_each_by_its_real_path(world: dict[str, Path]) -> None:
    home = world["home"]
    (home / ".aws").rmdir()
    (home / "real-gh").mkdir()
    os.rmdir(home / ".config/gh")
    os.symlink(home / "real-gh", home / ".config/gh")
    found = hidden(plan_for(world))
    assert str(home / ".aws") not in found
    assert str(home / "real-gh") in found and str(home / ".config/gh") not in found


def test_the_installed_code_is_read_only(world: dict[str, Path]) -> None:
    read_only = dict(plan_for(world).read_only)
    assert os.path.realpath(os.path.dirname(aegis_tui.__file__)) in read_only
    if sys.prefix != sys.base_prefix:
        assert os.path.realpath(sys.prefix) in read_only


def test_rules_hide_more_make_more_read_only_and_allow_back_only_default_places(world: dict[str, Path]) -> None:
    home = world["home"]
    (home / "secrets").mkdir()
    (home / ".gitconfig").write_text("x")
    rules = home / ".config/aegis-vault/sandbox.toml"
    rules.write_text('hide = ["~/secrets", "~/missing"]\nread_only = ["~/.gitconfig"]\n'
                     'allow = ["~/.aws", "~/.ssh", "~/vaults/work", "~/.config/aegis-vault"]\n')
    plan = plan_for(world)
    found = hidden(plan)
    assert str(home / "secrets") in found and str(home / "missing") not in found
    assert str(home / ".gitconfig") in dict(plan.read_only)
    assert str(home / ".aws") not in found and str(home / ".ssh/id_ed25519") not in found
    assert str(home / "vaults/work") in found and str(home / ".config/aegis-vault") in found  # never allowed back


def test_an_explicit_rules_path_and_xdg_config_home_are_honoured(world: dict[str, Path], tmp_path: Path) -> None:
    config = tmp_path / "xdg"
    (config / "aegis-vault").mkdir(parents=True)
    (config / "aegis-vault/sandbox.toml").write_text('allow = ["~/.netrc"]\n')
    plan = plan_for(world, environ=env_for(world, XDG_CONFIG_HOME=str(config)))
    assert str(config / "aegis-vault") in hidden(plan)
    assert str(world["home"] / ".netrc") not in hidden(plan)
    other = tmp_path / "other.toml"
    other.write_text('allow = ["~/.aws"]\n')
    assert str(world["home"] / ".aws") not in hidden(plan_for(world, rules_path=str(other)))


@pytest.mark.parametrize(("text", "problem"), [
    ("hide = [", "not valid TOML"),
    ('hidden = ["~/x"]', "unknown key 'hidden'"),
    ('hide = "~/x"', "hide must be a list"),
    ("read_only = [1]", "read_only must be a list"),
    ('allow = ["relative/path"]', "must be absolute or start with ~/"),
    ('hide = [""]', "empty or malformed"),
])
def test_a_bad_rules_file_is_one_line_naming_the_file_and_the_problem(world: dict[str, Path], text: str,
                                                                      problem: str) -> None:
    rules = world["home"] / ".config/aegis-vault/sandbox.toml"
    rules.write_text(text + "\n")
    with pytest.raises(UsageError) as raised:
        plan_for(world)
    message = str(raised.value)
    assert message.startswith(str(rules)) and problem in message and "\n" not in message


def test_the_network_is_host_or_none(world: dict[str, Path]) -> None:
    assert plan_for(world).network == "host"
    assert plan_for(world, network="none").network == "none"
    with pytest.raises(UsageError, match="--network"):
        plan_for(world, network="bridge")


def test_an_abstract_bus_has_no_path_to_hide(world: dict[str, Path]) -> None:
    plan = plan_for(world, environ=env_for(world, DBUS_SESSION_BUS_ADDRESS="unix:abstract=/tmp/dbus-x,guid=2"))
    assert not any(path.endswith("dbus-x") for path in hidden(plan))


def test_the_plan_round_trips_and_takes_a_session_socket(world: dict[str, Path]) -> None:
    plan = plan_for(world, network="none")
    assert SandboxPlan.from_dict(plan.to_dict()) == plan
    bound = plan.with_session_socket("/run/x/sessions/s.sock")
    assert bound.session_socket == "/run/x/sessions/s.sock" and plan.session_socket is None
    assert SandboxPlan.from_dict(bound.to_dict()) == bound


@pytest.mark.parametrize("change", [
    {"network": "bridge"},
    {"hidden": [["relative", "why"]]},
    {"hidden": [["/a/../b", "why"]]},
    {"hidden": [["/a\0b", "why"]]},
    {"read_only": "/x"},
    {"read_only": [["/x"]]},
    {"read_only": [["/x", 3]]},
    {"session_socket": "sock"},
])
def test_a_malformed_plan_from_the_wire_is_refused(change: dict[str, object]) -> None:
    data = {"hidden": [["/h", "why"]], "read_only": [["/r", "why"]], "network": "host", "session_socket": None}
    with pytest.raises(UsageError):
        SandboxPlan.from_dict({**data, **change})
    with pytest.raises(UsageError):
        SandboxPlan.from_dict("not a dict")  # type: ignore[arg-type]


def test_the_agent_environment_has_no_aegis_variable_and_no_bus() -> None:
    env = sandbox_env({"PATH": "/bin", "AEGIS_SESSION": "ast_x", "AEGIS_VAULT_KEY": "k", "AEGIS_VAULT_HOME": "/v",
                       "DBUS_SESSION_BUS_ADDRESS": "unix:path=/b", "SSH_AUTH_SOCK": "/s", "HOME": "/h"})
    assert env == {"PATH": "/bin", "SSH_AUTH_SOCK": "/s", "HOME": "/h"}
