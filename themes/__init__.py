"""batchdeck's own Textual themes, registered beside Textual's built-ins by the app.

One palette in two lightnesses: a teal primary for what the run is doing, amber
for what needs attention, and success / warning / error hues chosen so the item
table's status colours stay apart for the common colour-vision deficiencies
(the greens lean blue, the reds lean magenta). Widgets take every colour from
these theme variables, so any other Textual theme works as well.
"""

from __future__ import annotations

from textual.theme import Theme

BATCHDECK_DARK = Theme(
    name="batchdeck-dark",
    primary="#3FB4C4",
    secondary="#7A8CE0",
    accent="#F2A541",
    warning="#F2C14E",
    error="#E8617A",
    success="#5CC98B",
    foreground="#D9DEE5",
    background="#12151B",
    surface="#191D25",
    panel="#222835",
    dark=True,
)

BATCHDECK_LIGHT = Theme(
    name="batchdeck-light",
    primary="#0B7A8A",
    secondary="#4153B5",
    accent="#B5620B",
    warning="#9A6B00",
    error="#BF2F4D",
    success="#217A4A",
    foreground="#1E232C",
    background="#F5F4EF",
    surface="#FFFFFF",
    panel="#E6E4DC",
    dark=False,
)

THEMES: tuple[Theme, ...] = (BATCHDECK_DARK, BATCHDECK_LIGHT)
DEFAULT_THEME = BATCHDECK_DARK.name

__all__ = ["BATCHDECK_DARK", "BATCHDECK_LIGHT", "DEFAULT_THEME", "THEMES"]
