"""git as a client in end-to-end tests: a throwaway HOME, one credential helper, no prompts.

No git process can prompt: it runs in its own session (no terminal), with stdin from
/dev/null, ``GIT_TERMINAL_PROMPT=0`` and an empty ``GIT_ASKPASS`` (empty, not unset:
git then also skips ``core.askPass`` and ``SSH_ASKPASS``). ``credential.useHttpPath``
is on, so git names the repository (not only the host) when it asks for a credential.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path


def logging_helper(folder: Path, username: str, password: str | None) -> str:
    """A test-double credential helper (a shell script in ``folder``): answers ``get`` with
    a fixed username/password (or nothing when ``password`` is None), appends each action
    to ``helper-actions.log`` and saves each request as ``request-ACTION.txt``. Returns
    the ``credential.helper`` value that runs it."""
    log = folder / "helper-actions.log"
    helper = folder / "helper.sh"
    answer = f"printf 'username=%s\\npassword=%s\\n' {shlex.quote(username)} {shlex.quote(password or '')}"
    helper.write_text(
        "#!/bin/sh\n"
        f'echo "$1" >> {shlex.quote(str(log))}\n'
        f'cat > {shlex.quote(str(folder))}/request-"$1".txt\n'
        f'if [ "$1" = get ]; then {answer if password is not None else ":"}; fi\n'
    )
    helper.chmod(0o755)
    return "!" + shlex.quote(str(helper))


class Git:
    """git with a private HOME whose only credential helper is ``helper`` (a
    ``credential.helper`` value); ``env`` is added to git's environment (and so to the
    helper's)."""

    def __init__(self, folder: Path, helper: str, env: Mapping[str, str] | None = None) -> None:
        self.folder = folder
        self.home = folder / "home"
        self.home.mkdir(parents=True)
        self.log = folder / "helper-actions.log"
        self.env = {
            "PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config"),
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "",
            "LC_ALL": "C", **(env or {}),
        }
        for key, value in (("user.name", "Aegis Test"), ("user.email", "test@example.invalid"),
                           ("init.defaultBranch", "main"), ("credential.helper", helper),
                           ("credential.useHttpPath", "true"), ("credential.interactive", "false")):
            self("config", "--global", key, value)

    @classmethod
    def with_logging_helper(cls, folder: Path, username: str, password: str | None) -> Git:
        """git whose helper is ``logging_helper``: see ``actions`` and ``request``."""
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder, logging_helper(folder, username, password))

    def __call__(self, *args: str, cwd: Path | None = None, check: bool = True,
                 env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["git", *args], cwd=cwd or self.folder, env={**self.env, **(env or {})},
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, start_new_session=True,
                                timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def actions(self) -> list[str]:
        """The logging helper's actions so far (get, store, erase)."""
        return self.log.read_text().split() if self.log.exists() else []

    def request(self, action: str) -> str:
        """What git sent the logging helper for its last ``action``."""
        return (self.folder / f"request-{action}.txt").read_text()

    def commit_in_new_repo(self, name: str, files: dict[str, bytes]) -> tuple[Path, str]:
        work = self.folder / name
        self("init", "--quiet", str(work))
        for filename, content in files.items():
            (work / filename).write_bytes(content)
        self("add", ".", cwd=work)
        self("commit", "--quiet", "-m", "first", cwd=work)
        return work, self("rev-parse", "HEAD", cwd=work).stdout.strip()
