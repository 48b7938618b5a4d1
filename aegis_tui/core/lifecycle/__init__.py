"""A credential's life after it is added: rotation by policy and provider hooks,
compromise recovery with incident records, expiry, and the quarterly access review."""
