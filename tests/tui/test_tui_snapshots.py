"""SVG snapshots of every pane, the detail view, the help screen, the kill-switch dialog and
the OBSERVE banner, at 80x24 and 160x48, and of the Running pane and the History view (its
search and its detail view) at 120x40 too, on the fixture database with a frozen clock.

Update after an intended change with ``pytest tests/tui --snapshot-update`` and look at the
report. The views are the ones ``python -m operator_tui.devtools.screenshots`` writes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from operator_tui.devtools.fixture import DB_NAME, fixture_app
from operator_tui.devtools.screenshots import VIEWS, reach

CASES = [
    pytest.param(name, size, id=f"{name}-{size[0]}x{size[1]}")
    for name, view in VIEWS.items()
    for size in view.sizes
]


@pytest.mark.parametrize(("name", "size"), CASES)
def test_snapshot(
    name: str,
    size: tuple[int, int],
    snap_compare,
    fixture_dirs: dict[bool, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    view = VIEWS[name]
    monkeypatch.chdir(fixture_dirs[view.observe])  # the header shows "operator.db"
    assert snap_compare(
        fixture_app(DB_NAME), terminal_size=size, run_before=lambda pilot: reach(pilot, view)
    )
