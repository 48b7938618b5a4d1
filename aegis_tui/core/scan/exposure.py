"""What a finding of one of the vault's own values means for the vault.

A value found in clear (or encoded) somewhere it should not be is exposed: the
credential is marked so (the app and ``list`` show it, rotation clears it), and the
audit log records where it was found: locations and encodings, never the value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from aegis_tui.core.audit import Risk
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import NotFoundError
from aegis_tui.core.models import Status
from aegis_tui.core.scan.findings import KNOWN, Finding
from aegis_tui.core.scan.known import KnownValues
from aegis_tui.core.vault import Vault

_MAX_LOCATIONS = 50  # per credential and audit entry: enough to act on, bounded in size


def vault_known_values(vault: Vault, *, engine: str | None = None) -> KnownValues:
    """A matcher over every value the vault holds, retired versions included. The values
    themselves are dropped once it is compiled; one audit entry says a scan loaded them."""
    values = Credentials(vault).values(active_only=False)
    known = KnownValues({name: [(version, secret.reveal()) for version, secret in pairs]
                         for name, pairs in values.items()}, engine=engine)
    vault.audit.append("scan.load", vault.actor, risk=Risk.LOW, target="vault",
                       detail={"credentials": len(values), "values": sum(len(p) for p in values.values())})
    return known


def record_exposures(vault: Vault, findings: Iterable[Finding], *, via: str) -> list[str]:
    """Mark every credential found exposed (once) and audit where; returns their names.

    A credential destroyed since the scan started is skipped: there is nothing left to mark.
    """
    by_name: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        if finding.detector == KNOWN and finding.credential is not None:
            by_name[finding.credential].append(finding)
    credentials = Credentials(vault)
    marked = []
    for name, found in sorted(by_name.items()):
        try:
            credential = credentials.find(name)
        except NotFoundError:
            continue
        with vault.store.transaction():
            vault.audit.append(
                "leak.found", vault.actor, risk=Risk.HIGH, target=credential.name, context=credential.context,
                detail={"via": via, "count": len(found),
                        "locations": [f.location() for f in found[:_MAX_LOCATIONS]],
                        "encodings": sorted({f.encoding or "raw" for f in found}),
                        "versions": sorted({f.version for f in found if f.version is not None})},
            )
            if credential.status is Status.ACTIVE:
                credentials.set_status(credential.name, Status.EXPOSED, reason=f"found by {via} at {found[0].location()}")
        marked.append(credential.name)
    return marked
