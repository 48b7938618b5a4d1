"""A planted ``.aegis.toml`` that reaches into another context.

An agent that can write to a repository can plant (or edit) its project file so that
the owner's own ``aegis-vault run`` pulls a production credential into a dev command:
``context = "acme/dev"`` with ``X = "aegis://acme/prod/prod-db"``. References in a
project file resolve inside its context; one to another context is refused (the owner
unlocking the vault here has no pop-up to ask in), or through a broker, asked for in a
pop-up that says "outside this project's context" (refused at once, or denied unanswered,
when no app is attached), even when a standing grant would otherwise cover it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.attacker import audit_entries_after, leaked, ok
from tests.support.broker import aegis, audit_entries, without_key

OUTSIDE = "outside this project's context"
PLANTED = 'context = "acme/dev"\n\n[env]\nX = "aegis://acme/prod/prod-db"\n'
HONEST = 'context = "acme/dev"\n\n[env]\nY = "dev-db"\n'


def project(root: Path, name: str, text: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / ".aegis.toml").write_text(text)
    return folder


def child(marker: Path, variable: str) -> list[str]:
    """A command that leaves ``marker`` behind, holding whether it saw ``variable``."""
    return ["--", "sh", "-c", f'if [ -n "${variable}" ]; then echo had > "{marker}"; else echo none > "{marker}"; fi']


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    return project(tmp_path, "planted", PLANTED)


def test_the_owners_own_run_without_a_broker_refuses_a_project_reference_to_another_context(
        owner, planted: Path, tmp_path: Path):
    marker = tmp_path / "started"
    result = aegis(owner.env, "run", *child(marker, "X"), cwd=planted)
    code, started, lines = result.returncode, marker.exists(), result.err.splitlines()
    assert not leaked(result)
    assert code != 0 and not started, f"the child ran (exit {code}) with a credential of another context"
    assert len(lines) == 1 and lines[0].startswith("aegis-vault: ") and "Traceback" not in result.err, lines
    assert OUTSIDE in lines[0] and "acme/prod" in lines[0], lines[0]
    # A reference inside the project's context still works the same way.
    honest = project(tmp_path, "honest", HONEST)
    ok(aegis(owner.env, "run", *child(tmp_path / "honest-started", "Y"), cwd=honest))
    assert (tmp_path / "honest-started").read_text().strip() == "had"


def test_through_a_broker_a_project_reference_to_another_context_is_not_injected_even_under_a_standing_grant(
        owner, broker, planted: Path, tmp_path: Path):
    ok(owner("grants", "add", "prod-db"))  # a standing grant must not make it silent
    ok(owner("grants", "add", "dev-db"))
    before = max(entry["seq"] for entry in audit_entries(owner.env))
    marker = tmp_path / "started"
    human_shell = without_key(owner.env)  # no key, no session: the owner's shell with a broker running
    result = aegis(human_shell, "run", *child(marker, "X"), cwd=planted)
    code, started, lines = result.returncode, marker.exists(), result.err.splitlines()
    assert not leaked(result)
    assert code != 0 and not started, f"the child ran (exit {code}): a credential of another context was injected"
    # Nobody can answer a pop-up here: asked and denied unanswered (9), or refused at once (8).
    assert code in (8, 9), f"exit {code}: expected 8 (refused) or 9 (denied: nobody answered)"
    assert len(lines) == 1 and lines[0].startswith("aegis-vault: "), lines
    decided = [e for e in audit_entries_after(owner.env, before) if e["target"] == "prod-db"
               and e["operation"] in ("access.request", "access.timeout", "access.refused", "access.deny")]
    assert decided, "the broker left no audit entry about the request for prod-db"
    said = OUTSIDE in result.err or any(OUTSIDE in str(e.get("detail")) for e in decided)
    assert said, "neither the answer nor the audit log says the reference is outside the project's context"
    honest = project(tmp_path, "honest", HONEST)
    ok(aegis(human_shell, "run", *child(tmp_path / "honest-started", "Y"), cwd=honest))
    assert (tmp_path / "honest-started").read_text().strip() == "had"
