"""Status styles as theme variables, so every theme (ours or Textual's) colours them right.

Status is always glyph + word + colour, never colour alone.
"""

from __future__ import annotations

from aegis_tui.core.models import Health

HEALTH_STYLE: dict[Health, str] = {
    Health.OK: "$success",
    Health.DUE: "$accent",
    Health.OVERDUE: "bold $warning",
    Health.EXPIRING: "$warning",
    Health.EXPIRED: "$error",
    Health.EXPOSED: "bold $error",
    Health.FAILING: "bold $warning",
    Health.REVOKED: "strike $text-muted",
}


def health_label(health: Health) -> tuple[str, str]:
    """``("⚠ overdue", "bold $warning")``: a part for ``Content.assemble``."""
    return f"{health.glyph} {health}", HEALTH_STYLE[health]
