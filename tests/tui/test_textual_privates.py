"""Textual's private names the dashboard uses outside ``FixedTable`` (whose own are checked in
``test_fixed_table.py``): each test fails with what to update when Textual moves one."""

from __future__ import annotations

import inspect

import textual
from textual import events
from textual.screen import Screen
from textual.widgets import Input

VERSION = textual.__version__ if hasattr(textual, "__version__") else "?"


def moved(name: str, where: str) -> str:
    return f"Textual's {name} moved or changed (textual {VERSION}): update {where}"


def test_held_keys_are_forwarded_to_an_input_through_forward_event() -> None:
    forward = getattr(Input, "_forward_event", None)
    assert callable(forward), moved("MessagePump._forward_event", "operator_tui/key_hold.py")
    assert list(inspect.signature(forward).parameters) == ["self", "event"], moved(
        "MessagePump._forward_event", "operator_tui/key_hold.py"
    )


def test_width_classes_are_computed_by_get_breakpoint_classes() -> None:
    where = "operator_tui/screens/dashboard.py (_apply_breakpoints)"
    compute = getattr(Screen, "_get_breakpoint_classes", None)
    assert callable(compute), moved("Screen._get_breakpoint_classes", where)
    assert len(inspect.signature(compute).parameters) == 3, moved(
        "Screen._get_breakpoint_classes", where
    )


def test_the_first_resume_can_skip_restyling() -> None:
    where = "operator_tui/screens/dashboard.py (_on_screen_resume)"
    assert callable(getattr(Screen, "_on_screen_resume", None)), moved(
        "Screen._on_screen_resume", where
    )
    assert "refresh_styles" in inspect.signature(events.ScreenResume).parameters, moved(
        "ScreenResume.refresh_styles", where
    )


def test_screenshots_can_stop_the_cursor_blink() -> None:
    assert callable(getattr(Input, "_toggle_cursor", None)), moved(
        "Input._toggle_cursor", "operator_tui/devtools/screenshots.py"
    )
