"""Small sealed objects (sessions, grants) kept in the store's ``records`` table.

Each record is one JSON object sealed with AES-256-GCM and bound to (vault, kind, id,
revision): a record copied to another id or kind, or an old revision put back in
place of a newer one under the same revision number, fails to open. Only the kind and
id are in clear.
"""

from __future__ import annotations

import json
from typing import Any

from aegis_tui.core.crypto import associated_data, extend_associated_data
from aegis_tui.core.errors import IntegrityError
from aegis_tui.core.store.base import SealedRecord
from aegis_tui.core.vault import Vault

_decode_json = json.JSONDecoder().decode  # skips json.loads' per-call encoding sniffing (50k grants in a review)


class SealedRecords:
    """The records of one kind in one unlocked vault, as plain dictionaries."""

    def __init__(self, vault: Vault, kind: str) -> None:
        self._vault = vault
        self._kind = kind
        # The constant part of every record's associated data, computed once: ``all()``
        # opens tens of thousands of grants for an access review.
        self._aad_prefix = associated_data(vault.vault_id, "records", kind)

    def _aad(self, record_id: str, rev: int) -> bytes:
        return extend_associated_data(self._aad_prefix, record_id, rev)

    def _open(self, record: SealedRecord) -> dict[str, Any]:
        plain = self._vault.keys.sealer.open(record.sealed, self._aad(record.id, record.rev), f"a {self._kind} record")
        try:
            data = _decode_json(plain.decode("utf-8"))
        except ValueError:
            raise IntegrityError(f"a {self._kind} record is in a format this aegis-vault does not know") from None
        if not isinstance(data, dict) or data.get("id") != record.id:
            raise IntegrityError(f"a {self._kind} record does not belong to its row: the vault was tampered with")
        return data

    def _seal(self, data: dict[str, Any], rev: int) -> SealedRecord:
        blob = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        return SealedRecord(data["id"], rev, self._vault.keys.sealer.seal(blob, self._aad(data["id"], rev)))

    def get(self, record_id: str) -> tuple[int, dict[str, Any]] | None:
        record = self._vault.store.get_record(self._kind, record_id)
        return None if record is None else (record.rev, self._open(record))

    def all(self) -> list[tuple[int, dict[str, Any]]]:
        return [(record.rev, self._open(record)) for record in self._vault.store.list_records(self._kind)]

    def insert(self, data: dict[str, Any]) -> None:
        self._vault.store.put_record(self._kind, self._seal(data, 1), expected_rev=None)

    def update(self, data: dict[str, Any], rev: int) -> int:
        """Replace revision ``rev``; returns the new revision."""
        self._vault.store.put_record(self._kind, self._seal(data, rev + 1), expected_rev=rev)
        return rev + 1
