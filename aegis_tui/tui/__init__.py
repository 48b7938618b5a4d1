"""The full-screen app: a thin Textual layer over ``aegis_tui.core``.

Imported only by ``aegis-vault`` with no arguments (or ``aegis-vault demo``), never by
the other commands: Textual costs ~200 ms to import.
"""
