"""Compromise recovery: what a team does by hand when a credential leaks, in seconds.

The steps follow the incident runbooks in the background documents: mark the
credential exposed, cut every agent's access to it, replace the value (at once, with
no overlap: a leaked value must stop working now), have the provider revoke the old
value, and keep an incident record whose timeline says when each step happened and
how it went. A step that fails does not stop the ones after it; the incident shows it
failed, and what is left for the human (a manual credential's new value, the root
cause and prevention) stays open in the incident.
"""

from __future__ import annotations

from collections.abc import Iterable

from aegis_tui.core.actor import Actor
from aegis_tui.core.agents.grants import Grants
from aegis_tui.core.errors import AegisError, NotFoundError
from aegis_tui.core.lifecycle.incidents import Incident, Incidents
from aegis_tui.core.lifecycle.rotation import RotationManager, policy_of
from aegis_tui.core.models import Credential, Status, VersionState
from aegis_tui.core.scan.findings import KNOWN, Finding
from aegis_tui.core.vault import Vault


def recover(vault: Vault, name: str, *, source: str = "manual", severity: str = "high", impact: str = "",
            manager: RotationManager | None = None, actor: Actor | None = None) -> Incident:
    """Run every recovery step for credential ``name`` and return its incident."""
    actor = actor or vault.actor
    manager = manager or RotationManager(vault, actor=actor)
    credentials = manager.credentials
    credential = credentials.find(name)
    incidents = Incidents(vault, actor)
    incident = incidents.open(credential, severity=severity, source=source, impact=impact)

    def step(text: str, outcome: str = "ok", detail: str = "") -> None:
        nonlocal incident
        incident = incidents.add_step(incident.id, text, outcome, detail)

    if credential.status is Status.ACTIVE:
        credential = credentials.set_status(credential.name, Status.EXPOSED, reason=f"compromised ({source})")
    step("marked exposed")
    step(*_revoke_grants(vault, credential, actor))
    old_version = credential.current_version
    outcome = manager.rotate_now(credential.name, reason=f"compromised ({source})", overlap_seconds=0)
    if outcome.ok:
        step(f"rotated to version {outcome.version}, old value retired at once")
        hook = manager.revoke_old_value(credential.name, old_version)
        if hook is None:
            step("provider revocation of the old value", "pending", "no revoke hook: revoke it at the provider")
        else:
            step(f"revoke hook ran for version {old_version}", "ok" if hook.ok else "failed", hook.reason)
    elif policy_of(credential).method == "manual":
        step("rotation", "pending", f"a human must rotate it: aegis-vault rotate {credential.name!r}")
    else:
        step("rotation", "failed", outcome.detail)
    return incident


def _revoke_grants(vault: Vault, credential: Credential, actor: Actor) -> tuple[str, str, str]:
    """Revoke every active grant that covers ``credential`` (by name, service or tag)."""
    grants = Grants(vault, actor)
    covering = [grant for grant in grants.list() if grant.selects(credential)]  # list(): active ones
    failed = []
    for grant in covering:
        try:
            grants.revoke(grant.id, reason=f"{credential.name} compromised")
        except AegisError as err:
            failed.append(f"{grant.id[:8]}: {err}")
    if failed:
        return f"revoked {len(covering) - len(failed)} of {len(covering)} grants", "failed", "; ".join(failed)
    return f"revoked {len(covering)} grant(s)", "ok", ""


def recover_leaks(vault: Vault, findings: Iterable[Finding], *, via: str,
                  manager: RotationManager | None = None) -> list[Incident]:
    """Automatic recovery for the vault's own values seen leaking (``[compromise]
    auto_rotate`` in the policy file, on by default). Only a value still valid counts:
    a leaked retired value opens nothing any more (its revocation was handled when it
    retired), and a credential with an open incident already has a human on it, so a
    second scan of the same leak does not rotate again or open a second incident."""
    manager = manager or RotationManager(vault)
    if not manager.policy_file().auto_recover:
        return []
    leaked: dict[str, set[int]] = {}
    for finding in findings:
        if finding.detector == KNOWN and finding.credential is not None and finding.version is not None:
            leaked.setdefault(finding.credential, set()).add(finding.version)
    credentials = manager.credentials
    incidents = Incidents(vault, manager.actor)
    attended = {incident.credential_id for incident in incidents.list(include_closed=False)}
    opened = []
    for name, versions in sorted(leaked.items()):
        try:
            credential = credentials.find(name)
            valid = {info.version for info in credentials.versions(name) if info.state is not VersionState.RETIRED}
        except NotFoundError:
            continue
        if credential.status is Status.REVOKED or not versions & valid:
            continue
        if credential.id in attended:
            continue
        opened.append(recover(vault, name, source=via, manager=manager, actor=manager.actor))
    return opened
