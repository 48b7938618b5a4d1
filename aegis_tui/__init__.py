"""aegis-vault: a credential vault for people who work with AI coding agents.

Kept import-free on purpose: the command line imports this package on every call.
"""

__version__ = "0.1.0"
