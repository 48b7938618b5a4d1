"""The aegis theme: calm, dark, high-contrast status colours. Textual's themes stay available."""

from __future__ import annotations

from textual.theme import Theme

AEGIS = Theme(
    name="aegis",
    primary="#4FB3BF",
    secondary="#8C9EFF",
    accent="#F0C674",
    warning="#E5A24A",
    error="#E5646E",
    success="#8CC98A",
    foreground="#D7DEE6",
    background="#14191F",
    surface="#1B222A",
    panel="#232C36",
    dark=True,
    variables={
        "footer-key-foreground": "#4FB3BF",
        "input-selection-background": "#4FB3BF 35%",
        "block-cursor-background": "#2E4A57",
        "block-cursor-foreground": "#F2F5F8",
    },
)
