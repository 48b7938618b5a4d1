"""The broker: holds the unlocked vault while the app (or ``aegis-vault serve``) runs and
answers agents over a private Unix socket. Transport (``wire``, ``protocol``, ``server``,
``client``, ``runtime``, ``peer``) is kept apart from the decisions (``service``,
``approvals``); ``approver`` lets an app answer a headless broker's approvals."""
