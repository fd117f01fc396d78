"""Updating a ``Static`` only when what it shows changes.

``Static.update`` always asks Textual for a layout pass of the whole screen, then redraws
the widget, even with the same text. The header and the pane tabs are set again on every
read and every minute; an idle dashboard paid a layout pass each minute for texts that had
not changed, or had changed without changing width (the time of the last read).
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

Content = str | Text


def _same(old: object, new: Content) -> bool:
    """``Text`` equality ignores the style of the whole text: compare it too."""
    if isinstance(old, Text) and isinstance(new, Text):
        return old.plain == new.plain and old.style == new.style and old.spans == new.spans
    return type(old) is type(new) and old == new


def _width(content: object) -> int | None:
    if isinstance(content, Text):
        return content.cell_len
    if isinstance(content, str) and "[" not in content:  # markup: measured by Textual
        return Text(content).cell_len
    return None


def show(widget: Static, content: Content, *, one_line: bool = True) -> None:
    """``widget.update(content)`` unless it already shows it. A ``one_line`` widget whose
    content keeps its width is redrawn without a layout pass (its size cannot change)."""
    old = widget.content
    if _same(old, content):
        return
    width = _width(old)
    widget.update(content, layout=not one_line or width is None or width != _width(content))
