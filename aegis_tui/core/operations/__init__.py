"""The agent-facing operations, declared once (``registry``) and performed the same way
whatever carries them: the broker's socket or this process after it unlocked the vault.
``caller`` says who asks and what a host provides; ``provenance`` what the kernel
confirms about the asking process; ``use``, ``sessions``, ``grants`` and ``reports`` are
the handlers; ``transport`` declares what only a transport carries; ``perform`` runs one."""
