"""column_fit.fit: the columns shown fill the room exactly when they fit, the ones a pane
can spare go first, and nothing is ever narrower than it needs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from operator_tui.panes import PANES, ApprovalsPane
from operator_tui.panes.history import HistoryTable
from operator_tui.widgets.column_fit import fit

TABLES = [cls for _, _, cls in PANES] + [HistoryTable]


def needed(widths: dict[str, int]) -> int:
    return sum(w + 2 for w in widths.values())


@given(st.sampled_from(TABLES), st.integers(20, 300))
def test_columns_fill_the_room_or_only_the_spared_ones_go(cls, room: int) -> None:  # type: ignore[no-untyped-def]
    natural = {key: width for key, _, width in cls.COLUMNS}
    widths = fit(cls.COLUMNS, room, grow=cls.GROW, drop=cls.DROP)
    assert list(widths) == [k for k in natural if k in widths], "in their order"
    assert all(widths[k] >= natural[k] for k in widths), "never narrower than needed"
    gone = [k for k in cls.DROP if k not in widths]
    assert set(natural) - set(widths) == set(gone), "only columns the pane may spare go"
    assert gone == list(cls.DROP[: len(gone)]), "dropped in the pane's order, first to last"
    if needed(widths) <= room:
        assert needed(widths) == room or not set(widths) & set(cls.GROW), "the room is filled"
    else:
        assert gone == list(cls.DROP), "too wide only once every column it may spare is gone"
    if gone:
        assert needed({**widths, gone[-1]: natural[gone[-1]]}) > room, "dropped only if needed"


def test_approvals_keep_risk_proposer_and_expiry_at_any_width() -> None:
    approvals = ApprovalsPane
    for room in (60, 76, 116, 154):
        shown = fit(approvals.COLUMNS, room, grow=approvals.GROW, drop=approvals.DROP)
        assert {"risk", "by", "expires"} <= set(shown), room
