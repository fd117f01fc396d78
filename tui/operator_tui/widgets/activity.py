"""Activity sparklines: executions and failures per minute over the last hour."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static

from operator_tui.widgets import steady


class ActivityBar(Horizontal):
    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        # Built here, not in compose: the first data may be shown before they are mounted.
        self._runs = Sparkline([0], id="runs-spark")
        self._fails = Sparkline([0], id="fails-spark")
        self._runs_total = Static("", id="runs-total", classes="spark-total")
        self._fails_total = Static("", id="fails-total", classes="spark-total")

    def compose(self) -> ComposeResult:
        yield Static(" runs/min ", classes="spark-label")
        yield self._runs
        yield self._runs_total
        yield Static(" fails/min ", classes="spark-label")
        yield self._fails
        yield self._fails_total

    def show(self, executions: list[int], failures: list[int]) -> None:
        self._runs.data = executions or [0]
        self._fails.data = failures or [0]
        steady.show(self._runs_total, f" {sum(executions)}/h ")
        steady.show(self._fails_total, f" {sum(failures)}/h ")
