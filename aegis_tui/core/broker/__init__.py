"""The broker: holds the unlocked vault while the app (or ``aegis-vault serve``) runs and
answers agents over a private Unix socket. Transport (``server``, ``client``,
``protocol``) is kept apart from the decisions (``service``, ``approvals``)."""
