"""The broker: holds the unlocked vault while the app (or ``aegis-vault serve``) runs and
answers agents over a private Unix socket. It is a transport: ``wire``, ``protocol``,
``server``, ``client``, ``runtime`` and ``owner_channel`` carry requests; ``service`` is
the host the operations (``core.operations``) run in; ``approver`` lets an app answer a
headless broker's approvals. What a process is (``core.processes``) and what waits for a
human (``core.approvals``) live outside, shared with the operations and the app."""
