"""Keep secret values out of program output: the needles that reveal a value, and the masker."""

from aegis_tui.core.redaction.encodings import needles_for
from aegis_tui.core.redaction.masker import Masker, MaskStream

__all__ = ["MaskStream", "Masker", "needles_for"]
