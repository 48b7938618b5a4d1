"""The headless core: crypto, store, vault, audit. Imports neither Textual nor Rich."""
