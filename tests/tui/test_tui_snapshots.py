"""SVG snapshots of every pane, the detail view, the help screen, the kill-switch dialog and
the OBSERVE banner, at 80x24 and 160x48, on the fixture database with a frozen clock.

Update after an intended change with ``pytest tests/tui --snapshot-update`` and look at the
report. The views are the ones ``python -m operator_tui.devtools.screenshots`` writes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from operator_tui.devtools.fixture import DB_NAME, fixture_app
from operator_tui.devtools.screenshots import NARROW, VIEWS, WIDE, reach


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "160x48"])
@pytest.mark.parametrize("name", list(VIEWS))
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
