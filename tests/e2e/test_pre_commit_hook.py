"""``scan --staged`` as a pre-commit hook, through the real pre-commit framework, in a
real git repository: a commit holding one of the vault's values is refused, a clean
one goes through.

The hook comes from the repository's own ``.pre-commit-hooks.yaml``; the test installs
it as a ``local`` hook (the framework would otherwise clone and pip-install this
repository) running the ``aegis-vault`` of this virtualenv.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEY = "3d" * 32
VALUE = "sk_live_PreCommitCanary0000000000077"
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"
AEGIS = Path(sys.executable).parent / "aegis-vault"

pytestmark = pytest.mark.skipif(not PRE_COMMIT.exists(), reason="pre-commit is not installed (pip install pre-commit)")


def hook_definition() -> dict[str, object]:
    import yaml  # pre-commit's own dependency

    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    return hook


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    home.mkdir()
    vault_home = tmp_path / "vault"
    env = {"PATH": f"{AEGIS.parent}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home),
           "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C", "AEGIS_VAULT_HOME": str(vault_home), "AEGIS_VAULT_KEY": KEY,
           "AEGIS_VAULT_INSECURE_FAST_KDF": "1", "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache"),
           "PYTHONDONTWRITEBYTECODE": "1", "XDG_RUNTIME_DIR": str(tmp_path)}
    run = lambda *argv, **kw: subprocess.run(argv, env=env, capture_output=True, text=True, **kw)  # noqa: E731
    assert run(str(AEGIS), "init", "--no-passphrase").returncode == 0
    assert run(str(AEGIS), "add", "stripe-live", input=VALUE).returncode == 0
    work = tmp_path / "work"
    work.mkdir()
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "config", "user.name", "T"],
                 ["git", "config", "user.email", "t@example.invalid"]):
        assert run(*argv, cwd=work).returncode == 0
    hook = hook_definition()
    (work / ".pre-commit-config.yaml").write_text(
        "repos:\n- repo: local\n  hooks:\n"
        f"  - id: {hook['id']}\n    name: {hook['name']}\n    entry: {AEGIS} {str(hook['entry']).split(' ', 1)[1]}\n"
        f"    language: system\n    pass_filenames: {str(hook['pass_filenames']).lower()}\n"
    )
    installed = run(str(PRE_COMMIT), "install", cwd=work)
    assert installed.returncode == 0, installed.stderr
    return work, env


def commit(work: Path, env: dict[str, str], name: str, text: str) -> subprocess.CompletedProcess[str]:
    (work / name).write_text(text)
    subprocess.run(["git", "add", "-A"], cwd=work, env=env, check=True)
    return subprocess.run(["git", "commit", "-q", "-m", f"add {name}"], cwd=work, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120)


def test_the_hook_refuses_a_commit_holding_a_vault_value_and_lets_a_clean_one_through(repo) -> None:
    work, env = repo
    clean = commit(work, env, "README.md", "just text\n")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    leaking = commit(work, env, "deploy.yml", f"key: {base64.b64encode(VALUE.encode()).decode()}\n")
    assert leaking.returncode != 0
    output = leaking.stdout + leaking.stderr
    assert "deploy.yml:1:6" in output and "stripe-live" in output
    assert VALUE not in output and base64.b64encode(VALUE.encode()).decode() not in output
    log = subprocess.run(["git", "log", "--format=%s"], cwd=work, env=env, capture_output=True, text=True).stdout
    assert log.split() == ["add", "README.md"]  # the leaking commit did not happen


def test_the_hook_definition_runs_scan_on_the_staged_files() -> None:
    hook = hook_definition()
    assert hook["entry"] == "aegis-vault scan --staged" and hook["pass_filenames"] is False
    assert shutil.which("git")
