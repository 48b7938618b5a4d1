"""Allow ``python -m aegis_tui``."""

from aegis_tui.cli import main

raise SystemExit(main())
