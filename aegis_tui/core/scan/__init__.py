"""The leak scanner: the vault's own values in every encoding, provider rules in
gitleaks' schema, and allowlists, over files, git history and streams."""
