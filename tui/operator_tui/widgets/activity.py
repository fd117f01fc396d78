"""Activity sparklines: executions and failures per minute over the last hour."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static


class ActivityBar(Horizontal):
    def compose(self) -> ComposeResult:
        yield Static(" runs/min ", classes="spark-label")
        yield Sparkline([0], id="runs-spark")
        yield Static("", id="runs-total", classes="spark-total")
        yield Static(" fails/min ", classes="spark-label")
        yield Sparkline([0], id="fails-spark")
        yield Static("", id="fails-total", classes="spark-total")

    def show(self, executions: list[int], failures: list[int]) -> None:
        self.query_one("#runs-spark", Sparkline).data = executions or [0]
        self.query_one("#fails-spark", Sparkline).data = failures or [0]
        self.query_one("#runs-total", Static).update(f" {sum(executions)}/h ")
        self.query_one("#fails-total", Static).update(f" {sum(failures)}/h ")
