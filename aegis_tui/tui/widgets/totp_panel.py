"""Live TOTP codes with a countdown, for every TOTP entry.

The seeds are decrypted once when the panel is filled (one audited read each) and kept
only while the vault is unlocked; codes are recomputed every second from them.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.content import Content
from textual.widgets import Static

from aegis_tui.core.secret import Secret
from aegis_tui.core.totp import totp_code

_BAR = 8


class TotpPanel(Static):
    DEFAULT_CSS = """
    TotpPanel { width: 46; border: round $panel-lighten-2; background: $surface; padding: 0 1; height: 1fr; }
    """

    def __init__(self, clock: Callable[[], float], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._seeds: list[tuple[str, Secret]] = []

    def on_mount(self) -> None:
        self.border_title = "TOTP"
        self.tick()

    def set_seeds(self, seeds: list[tuple[str, Secret]]) -> None:
        self._seeds = seeds
        self.tick()

    def code_for(self, name: str) -> str | None:
        for seed_name, seed in self._seeds:
            if seed_name == name:
                return totp_code(seed, self._clock()).code
        return None

    def tick(self) -> None:
        now = self._clock()
        lines: list[Content] = []
        for name, seed in self._seeds:
            code = totp_code(seed, now)
            half = len(code.code) // 2
            filled = round(_BAR * code.seconds_left / code.period)
            lines.append(Content.assemble(
                f"{name[:17]:<17} ",
                (f"{code.code[:half]} {code.code[half:]}", "bold"),
                ("  " + "█" * filled + "░" * (_BAR - filled), "$success" if code.seconds_left > 5 else "$error"),
                (f" {code.seconds_left:>2}s", "$text-muted"),
            ))
        self.update(Content("\n").join(lines) if lines else Content.styled("No TOTP entries.", "$text-muted"))
