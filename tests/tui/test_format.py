"""How times read on the dashboard, and how long a row's time can be left alone."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from operator_tui.format import duration, steady_for


def test_durations_read_at_a_glance() -> None:
    assert [duration(s) for s in (0, 4.4, 5, 44, 59.4)] == ["<5s", "<5s", "5s", "40s", "55s"]
    assert [duration(s) for s in (59.6, 61, 3599)] == ["1m", "1m", "59m"]
    assert duration(2 * 3600 + 3 * 60) == "2h 03m"
    assert duration(3 * 86400 + 4 * 3600 + 59) == "3d 4h"
    assert duration(-44) == "40s"


def test_a_time_in_its_last_minute_is_recomputed_at_every_tick() -> None:
    assert steady_for(0) == steady_for(30) == steady_for(-59) == 0.0


def test_a_time_far_off_is_left_alone_until_its_minute_can_turn() -> None:
    # 150 s away reads "2m" from 149.5 down to 90.5 (or up to 149.5): at least 29 s.
    assert steady_for(150) == 29.0
    assert steady_for(179.9) == 0.0  # about to turn to "2m"


@given(st.floats(min_value=-10 * 86400, max_value=10 * 86400, allow_nan=False))
def test_what_is_left_alone_reads_the_same_in_the_meantime(seconds: float) -> None:
    """The contract ``PaneTable.tick`` relies on: ``duration`` does not change within
    ``steady_for`` seconds either way (a countdown falls, an age grows)."""
    steady = steady_for(seconds)
    for moved in (steady, steady / 2, -steady, -steady / 2):
        assert duration(seconds + moved) == duration(seconds), (seconds, moved)
