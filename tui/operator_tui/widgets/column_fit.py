"""Which columns a table shows in a given width, and how wide each is.

Each column has a width it needs (its natural width); the ones that may grow share what the
pane has left over, in proportion to their weights; when even the natural widths do not fit,
the columns the pane can best spare are left out, one at a time, in the order it gives
(their full values stay in the detail view). Pure arithmetic: the table applies it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def fit(
    columns: Sequence[tuple[str, str, int]],
    room: int,
    *,
    grow: Mapping[str, int],
    drop: Sequence[str],
    padding: int = 1,
) -> dict[str, int]:
    """Column key → width (without padding) for each column shown in ``room`` cells, in the
    order of ``columns``. Too narrow for the columns no one may drop: they are all shown at
    their natural width (the table scrolls sideways)."""
    shown = {key: width for key, _, width in columns}
    for key in drop:
        if _needed(shown, padding) <= room:
            break
        shown.pop(key, None)
    spare = room - _needed(shown, padding)
    weights = {key: grow.get(key, 0) for key in shown if grow.get(key, 0) > 0}
    total = sum(weights.values())
    if spare <= 0 or not total:
        return shown
    given = 0
    for i, (key, weight) in enumerate(weights.items()):
        # The last growing column takes the rounding's remainder: the row fills the pane.
        extra = spare - given if i == len(weights) - 1 else spare * weight // total
        shown[key] += extra
        given += extra
    return shown


def _needed(widths: Mapping[str, int], padding: int) -> int:
    return sum(width + 2 * padding for width in widths.values())
