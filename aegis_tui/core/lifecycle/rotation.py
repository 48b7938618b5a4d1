"""The rotation manager: rotates credentials when their period runs out, retires old
versions when their overlap ends, and reminds about the ones a human must rotate.

It runs inside the broker (the app's or ``serve``'s), so rotation happens on time
without anyone asking; ``tick`` is also what ``aegis-vault rotate --due`` runs. Nothing
is scheduled ahead: every tick looks at the vault's state and the clock, so runs missed
while the machine was off are caught up by the first tick after it starts, and a
credential several periods overdue is rotated once, not once per missed period.

How a value is made is each credential's ``rotation_policy`` (``lifecycle/policy.py``):
``generate`` here with ``secrets``, ``command`` by a provider hook from the policy
file, ``manual`` by a human (the manager only reminds). A failed hook leaves the current
version untouched; every attempt, good or bad, is in the audit log.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import NamedTuple

from aegis_tui.core.actor import Actor
from aegis_tui.core.store.records import SealedRecords
from aegis_tui.core.audit import Outcome, Risk
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import AegisError, NotFoundError
from aegis_tui.core.generate import generate_value
from aegis_tui.core.lifecycle.hooks import HookResult, run_revoke_hook, run_rotate_hook
from aegis_tui.core.lifecycle.policy import PolicyFile, RotationPolicy, load_policy_file
from aegis_tui.core.models import EXPIRY_WARNING_DAYS, Credential, RotationState, Status
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault

# One rotation at a time in this process: the broker's tick, the app's "rotate now" and
# compromise recovery each make a manager of their own, and two of them rotating the
# same overdue credential at once would call its provider hook twice.
_ROTATING = threading.RLock()
_RETIRED_RECORD = "retirements"  # SealedRecords id: versions whose end has been handled


class RotationStatus(NamedTuple):
    """One credential's place in its rotation and expiry schedule."""

    name: str
    context: str
    method: str  # "manual" | "generate" | "command"
    policy: str  # a short description of how a new value is made
    period_days: int | None
    state: RotationState
    days_left: int | None  # until the rotation deadline; negative once overdue
    expires: str | None
    expiry_days: int | None  # days until expiry; negative once expired
    status: Status

    @property
    def needs_human(self) -> bool:
        """Due or overdue, and only a person can make the new value."""
        return self.method == "manual" and self.state in (RotationState.DUE, RotationState.OVERDUE)

    @property
    def attention(self) -> bool:
        """Anything to act on: rotation due or overdue, or expiry within the warning window."""
        expiring = self.expiry_days is not None and self.expiry_days <= EXPIRY_WARNING_DAYS
        return self.state in (RotationState.DUE, RotationState.OVERDUE) or expiring


class RotationOutcome(NamedTuple):
    """What one rotation attempt did, in one line fit for a person and the audit log."""

    name: str
    ok: bool
    version: int | None  # the new current version when ok
    detail: str


class TickReport(NamedTuple):
    rotated: list[RotationOutcome]
    retired: list[str]  # "NAME v3" for each version whose overlap ended this tick
    reminders: list[RotationStatus]  # manual credentials due or overdue


class RotationManager:
    """Rotation by policy for one unlocked vault. Rotating and retiring take a lock shared
    by every manager in the process (the broker ticks on a worker thread while the app
    may rotate one credential now)."""

    def __init__(self, vault: Vault, policy: PolicyFile | None = None, *, actor: Actor | None = None) -> None:
        """``policy``: the policy file's hooks; None to read the file when hooks are needed
        (once per tick), so a hook added while the broker runs is seen without a restart."""
        self._vault = vault
        self._policy = policy
        self.actor = actor or vault.actor

    @property
    def credentials(self) -> Credentials:
        return Credentials(self._vault, self.actor)

    def policy_file(self) -> PolicyFile:
        return self._policy if self._policy is not None else load_policy_file()

    # -- looking --------------------------------------------------------------------------
    def status(self, now: float | None = None) -> list[RotationStatus]:
        """Every credential with a rotation period or an expiry date, not revoked, most
        urgent first."""
        now = self._vault.clock() if now is None else now
        rows = [status_of(c, now) for c in self.credentials.list()
                if c.status is not Status.REVOKED and (c.rotation_days or c.expires)]
        return sorted(rows, key=_urgency)

    # -- acting ---------------------------------------------------------------------------
    def tick(self, *, include_due: bool = False) -> TickReport:
        """One look at the whole vault: rotate what ``generate`` or ``command`` can rotate
        and is overdue (also what is merely due with ``include_due``, as ``rotate --due``
        asks), handle versions whose overlap ended, and list the manual ones to remind."""
        with _ROTATING:
            now = self._vault.clock()
            hooks = functools.cache(self.policy_file)  # read once per tick, and only if a hook is needed
            wanted = {RotationState.OVERDUE} | ({RotationState.DUE} if include_due else set())
            rotated = []
            reminders = []
            credentials = self.credentials.list()
            for credential in credentials:
                if credential.status is Status.REVOKED or not credential.rotation_days:
                    continue
                state, days_left = credential.rotation(now)
                if state not in (RotationState.DUE, RotationState.OVERDUE):
                    continue
                if policy_of(credential).method == "manual":
                    reminders.append(status_of(credential, now))
                elif state in wanted:
                    late = f"due {-days_left} day(s) ago" if days_left is not None and days_left < 0 else "due"
                    rotated.append(self._rotate(credential, hooks, reason=f"scheduled: {late}"))
            retired = self._retire_ended(credentials, now, hooks)
        return TickReport(rotated, retired, reminders)

    def rotate_now(self, name: str, *, reason: str = "requested", overlap_seconds: int | None = None) -> RotationOutcome:
        """Rotate one credential by its policy now, whatever its schedule. ``manual``
        credentials are not rotated: the outcome says a human has to."""
        with _ROTATING:
            return self._rotate(self.credentials.find(name), self.policy_file, reason=reason,
                                overlap_seconds=overlap_seconds)

    def revoke_old_value(self, name: str, version: int) -> HookResult | None:
        """Run the credential's revoke hook for one of its old values (compromise recovery
        does this at once; ``tick`` when the overlap ends). None: no revoke hook applies."""
        with _ROTATING:
            return self._revoke_hook(self.credentials.find(name), version, self.policy_file)

    # -- the work ---------------------------------------------------------------------------
    def _rotate(self, credential: Credential, hooks: Callable[[], PolicyFile], *, reason: str,
                overlap_seconds: int | None = None) -> RotationOutcome:
        policy = policy_of(credential)
        if credential.status is Status.REVOKED:
            return RotationOutcome(credential.name, False, None, "revoked: add a new credential instead")
        if policy.method == "manual":
            return RotationOutcome(credential.name, False, None,
                                   f"needs a human: run aegis-vault rotate {credential.name!r}")
        try:
            value = self._new_value(credential, policy, hooks)
        except AegisError as err:
            return self._failed(credential, policy, reason, str(err))
        if isinstance(value, HookResult):
            if not value.ok or value.value is None:
                return self._failed(credential, policy, reason, value.reason, output=value.output)
            value = value.value
        rotated = self.credentials.rotate(credential.name, value, overlap_seconds=overlap_seconds)
        self._vault.audit.append("rotation.scheduled" if reason.startswith("scheduled") else "rotation.policy",
                                 self.actor, risk=Risk.MEDIUM, target=rotated.name, context=rotated.context,
                                 detail={"method": policy.method, "hook": policy.hook, "reason": reason,
                                         "version": rotated.current_version})
        return RotationOutcome(rotated.name, True, rotated.current_version,
                               f"rotated to version {rotated.current_version} ({policy.describe()})")

    def _new_value(self, credential: Credential, policy: RotationPolicy,
                   hooks: Callable[[], PolicyFile]) -> Secret | HookResult:
        if policy.method == "generate":
            return generate_value(policy.length, policy.charset, policy.prefix)
        hook = hooks().hook(policy.hook)
        old = self.credentials.reveal(credential.name, purpose="rotation.hook", allow_expired=True)
        return run_rotate_hook(hook, old, credential)

    def _failed(self, credential: Credential, policy: RotationPolicy, reason: str, why: str,
                output: str = "") -> RotationOutcome:
        """A failed attempt leaves the current version as it is; the audit log says why,
        with the hook's output (already masked) cut to what fits an entry."""
        self._vault.audit.append("rotation.failed", self.actor, outcome=Outcome.FAILED, risk=Risk.HIGH,
                                 target=credential.name, context=credential.context,
                                 detail={"method": policy.method, "hook": policy.hook, "reason": reason,
                                         "why": why, "output": output[-1024:]})
        return RotationOutcome(credential.name, False, None, f"rotation failed: {why}")

    def _retire_ended(self, credentials: list[Credential], now: float, hooks: Callable[[], PolicyFile]) -> list[str]:
        """Versions whose overlap window has ended since the last look: audited once each,
        and their revoke hook run, so the provider stops accepting the old value too."""
        records = SealedRecords(self._vault, "lifecycle")
        found = records.get(_RETIRED_RECORD)
        rev, handled = found if found is not None else (0, {"id": _RETIRED_RECORD, "versions": []})
        seen = set(handled["versions"])
        newly = []
        for credential in credentials:
            if all(f"{credential.id}:{version}" in seen for version in range(1, credential.current_version)):
                continue  # every old version handled already (or never rotated): nothing to read
            for version in self._vault.store.list_versions(credential.id):
                key = f"{credential.id}:{version.version}"
                if version.retires_at is None or version.retires_at > now or key in seen:
                    continue
                seen.add(key)
                newly.append(f"{credential.name} v{version.version}")
                hook_result = self._revoke_hook(credential, version.version, hooks)
                self._vault.audit.append(
                    "version.retired", self.actor, risk=Risk.LOW, target=credential.name, context=credential.context,
                    detail={"version": version.version, "overlap_ended": version.retires_at,
                            "revoke_hook": None if hook_result is None else hook_result.reason})
        if newly:
            handled = {"id": _RETIRED_RECORD, "versions": sorted(seen)}
            if found is None:
                records.insert(handled)
            else:
                records.update(handled, rev)
        return newly

    def _revoke_hook(self, credential: Credential, version: int, hooks: Callable[[], PolicyFile]) -> HookResult | None:
        policy = policy_of(credential)
        if policy.method != "command":
            return None
        try:
            hook = hooks().hook(policy.hook)
        except AegisError:
            return None
        if not hook.revoke:
            return None
        try:
            old = self.credentials.reveal(credential.name, version=version, purpose="rotation.revoke-hook",
                                          allow_retired=True, allow_expired=True)
        except NotFoundError:
            return None
        result = run_revoke_hook(hook, old, credential)
        self._vault.audit.append("revoke-hook", self.actor, outcome=Outcome.OK if result.ok else Outcome.FAILED,
                                 risk=Risk.MEDIUM if result.ok else Risk.HIGH, target=credential.name,
                                 context=credential.context,
                                 detail={"version": version, "hook": hook.name, "result": result.reason,
                                         "output": result.output[-1024:]})
        return result


def policy_of(credential: Credential) -> RotationPolicy:
    """The credential's policy; a record written before policies existed is manual."""
    return RotationPolicy.from_mapping(dict(credential.rotation_policy)) if credential.rotation_policy \
        else RotationPolicy()


def status_of(credential: Credential, now: float) -> RotationStatus:
    policy = policy_of(credential)
    state, days_left = credential.rotation(now)
    return RotationStatus(credential.name, credential.context, policy.method, policy.describe(),
                          credential.rotation_days, state, days_left, credential.expires,
                          credential.days_to_expiry(now), credential.status)


_STATE_ORDER = {RotationState.OVERDUE: 0, RotationState.DUE: 1, RotationState.OK: 2, RotationState.NONE: 3}


def _urgency(row: RotationStatus) -> tuple[int, int, str]:
    expiring = row.expiry_days is not None and row.expiry_days <= EXPIRY_WARNING_DAYS
    order = min(_STATE_ORDER[row.state], 1 if expiring else 3)
    soonest = min(d for d in (row.days_left, row.expiry_days, 10**6) if d is not None)
    return order, soonest, row.name.casefold()
