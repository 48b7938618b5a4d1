"""Operations the transport carries itself (no handler here): the masking stream, and
the owner channel's handshake and approval traffic. See ``core/broker/server`` and
``core/broker/owner_channel``."""

from __future__ import annotations

from aegis_tui.core.operations.registry import BOOL, INT, OPT_INT, OPT_NUM, STR, STRS, Authority, transport_operation

transport_operation("mask", {}, Authority.CALLER)
transport_operation("owner.hello", {"nonce": (STR, True)}, Authority.CALLER)
transport_operation("owner.prove", {"proof": (STR, True)}, Authority.CALLER)
transport_operation("approvals.subscribe", {}, Authority.APPROVER)
transport_operation("approvals.decide", {"id": (INT, True), "allow": (BOOL, True), "uses": (OPT_INT, False),
                                         "ttl_seconds": (OPT_NUM, False), "for_session": (BOOL, False),
                                         "scopes": (STRS, False), "bind": (STR, False)}, Authority.APPROVER)
# While ``run.start`` runs, its client passes on the signals it gets (the broker signals
# the run's runner with them); they are never answered.
transport_operation("run.signal", {"signal": (INT, True)}, Authority.CALLER)
