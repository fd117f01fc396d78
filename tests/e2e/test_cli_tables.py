"""Listings piped to another program (issue 23, item 9): a header, then one tab-separated row
per item with every value whole (not cut to 80 columns), so grep and awk work."""

from __future__ import annotations

from pathlib import Path

from operator_core.actions.executor import ActionExecutor

from tests.e2e.conftest import cli_env, run_cli, seed

LONG = "a-very-long-reason-" * 12


def test_listings_to_a_pipe_are_whole_tab_separated_rows_under_a_header(db: Path) -> None:
    async def go(ex: ActionExecutor) -> None:
        await ex.propose_action("ok", {"seconds": 0.5}, LONG, proposed_by="agent-with-a-long-name")
        await ex.propose_workflow("rebalance-" + "x" * 90, "d", [{"action_name": "ok"}] * 2)
        await ex.open_ticket("disk " * 30, "", "high", "someone")

    seed(db, go)
    env = cli_env(db.parent, COLUMNS="80")
    actions = run_cli(db, "actions", "list", env=env).stdout.splitlines()
    assert actions[0].split("\t") == ["ID", "ACTION", "PARAMETERS", "STATE", "WF", "PROPOSED", "BY"]
    rows = [line.split("\t") for line in actions[1:]]
    assert [r[0] for r in rows] == ["3", "2", "1"]
    assert rows[2][1:4] == ["ok", "seconds=0.5", "validated"]
    assert rows[2][6] == "agent-with-a-long-name"
    assert rows[0][4] == "1"  # the workflow's steps name it

    workflows = run_cli(db, "workflows", "list", env=env).stdout.splitlines()
    assert workflows[0].split("\t") == ["ID", "NAME", "STATUS", "STEPS", "APPROVAL"]
    assert workflows[1].split("\t")[:4] == ["1", "rebalance-" + "x" * 90, "pending", "0/2 steps"]

    tickets = run_cli(db, "ticket", "list", env=env).stdout.splitlines()
    assert tickets[0].split("\t")[0] == "ID" and len(tickets) == 2
    title = tickets[1].split("\t")[-1]
    assert title.startswith("disk disk") and len(title) >= 149, title
