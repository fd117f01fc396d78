"""A workflow's approval is bound to what each of its steps runs: a step whose command
changed after the approval does not run, and sends its whole workflow back for approval
(the steps already done stay done); approved again, it runs the new command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.db import fingerprints
from operator_core.model.types import ActionStatus, WorkflowStatus
from operator_core.runner import Runner
from operator_core.subjects.runbook import RunbookSubject

RUNBOOK = """
[actions.step]
argv = [@PY@, "-c", "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text('ran')", "{out}"]
params = { out = { type = "string" } }
requires_approval = true

[actions.last]
argv = [@PY@, "-c", "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text('ran')", @LAST@]
requires_approval = true
"""


def write(path: Path, last: Path) -> None:
    path.write_text(
        RUNBOOK.replace("@PY@", json.dumps(sys.executable)).replace("@LAST@", json.dumps(str(last)))
    )


def executor(db: Path, runbook: Path) -> ActionExecutor:
    """A process's executor: its subject read from the runbook file as it is now."""
    return ActionExecutor(
        db, ActionRegistry.from_subject(RunbookSubject(runbook)), approval_mode=False
    )


async def test_a_changed_step_sends_its_workflow_back_for_approval(tmp_path: Path) -> None:
    db, runbook = tmp_path / "ops.db", tmp_path / "ops.toml"
    first, old_last, new_last = tmp_path / "first", tmp_path / "last-old", tmp_path / "last-new"
    write(runbook, old_last)
    async with executor(db, runbook) as approver:
        wf = await approver.propose_workflow(
            "two steps",
            "then the last",
            [
                {"action_name": "step", "parameters": {"out": str(first)}, "reason": "one"},
                {"action_name": "last", "reason": "two"},
            ],
        )
        await approver.approve_workflow(wf, "alice")

    write(runbook, new_last)  # the last step's command is edited after the approval
    async with executor(db, runbook) as ex:
        await Runner(ex, poll_interval=0.05, grace_seconds=1.0).run(until_idle=True)
        steps = await ex.db.list_workflow_actions(wf)
        assert first.read_text() == "ran"  # the unchanged first step ran
        assert not old_last.exists() and not new_last.exists()
        assert [s.status for s in steps] == [ActionStatus.COMPLETED, ActionStatus.VALIDATED]
        assert steps[1].approved_at is None and steps[1].awaiting_approval
        workflow = await ex.require_workflow(wf)
        assert workflow.status == WorkflowStatus.PENDING and workflow.approved_at is None
        reason = await ex.db.read(fingerprints.workflow_voided, wf)
        assert reason is not None and "argv[3]" in reason and "last-new" in reason
        check = await ex.approval_check(steps[1].id or 0)
        assert check.voided == reason and check.sha256 is None

        # Approved again (what runs now), the rest of the workflow runs the new command.
        await ex.approve_workflow(wf, "bob")
        await Runner(ex, poll_interval=0.05, grace_seconds=1.0).run(until_idle=True)
        assert new_last.read_text() == "ran" and not old_last.exists()
        assert (await ex.require_workflow(wf)).status == WorkflowStatus.COMPLETED
        assert (await ex.db.read(fingerprints.workflow_voided, wf)) is None
