"""The dashboard reads views of the rows (no pydantic): the same values as the models, and
its first frame is drawn before pydantic is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from operator_core.db.actions import ActionDB, Snapshot
from operator_core.model.types import ActionProposal, AuditEvent, WorkflowProposal
from operator_core.model.views import AuditEventView, ProposalView, WorkflowView
from operator_tui import data as dashboard_data
from operator_tui.devtools.fixture import FixtureSubject

REPO = Path(__file__).resolve().parents[2]


def _everything(snap: Snapshot) -> dict[str, list[object]]:
    workflows = snap.list_workflows(limit=1000)
    steps = snap.list_workflow_steps([wf.id for wf in workflows if wf.id is not None])
    return {
        "approvals": list(snap.list_pending_approvals(limit=1000)),
        "scheduled": list(snap.list_scheduled(limit=1000)),
        "retries": list(snap.list_retry_backlog(limit=1000)),
        "workflows": list(workflows),
        "steps": [p for wf_steps in steps.values() for p in wf_steps],
        "events": list(snap.list_audit_events(limit=10_000)),
    }


async def test_views_hold_the_models_values(db_path: Path) -> None:
    async with ActionDB(db_path) as db:
        models = await db.snapshot(_everything)
        views = await db.snapshot(_everything, views=True)
    action = (ActionProposal, ProposalView)
    kinds = {
        "approvals": action,
        "scheduled": action,
        "retries": action,
        "steps": action,
        "workflows": (WorkflowProposal, WorkflowView),
        "events": (AuditEvent, AuditEventView),
    }
    for name, (model_type, view_type) in kinds.items():
        assert models[name], f"the fixture has {name}"
        assert len(views[name]) == len(models[name])
        for model, view in zip(models[name], views[name], strict=True):
            assert type(model) is model_type and type(view) is view_type
            fields = type(model).model_fields
            assert vars(view) == {f: getattr(model, f) for f in fields}, name
            if isinstance(model, ActionProposal):
                assert view.is_retry_waiting == model.is_retry_waiting
                assert view.awaiting_approval == model.awaiting_approval
    assert any(v.is_retry_waiting for v in views["retries"])
    assert all(v.awaiting_approval for v in views["approvals"])


async def test_the_dashboard_reads_views(db_path: Path) -> None:
    async with ActionDB(db_path) as db:
        loaded = await dashboard_data.load(db, 0)
    shown = [
        *loaded.approvals,
        *loaded.scheduled,
        *loaded.retries,
        *(p for steps in loaded.steps.values() for p in steps),
        *(h.proposal for h in loaded.running + loaded.queued),
    ]
    assert shown and all(type(p) is ProposalView for p in shown)
    assert loaded.running, "the fixture has a step executing"
    assert loaded.workflows and all(type(wf) is WorkflowView for wf in loaded.workflows)
    assert loaded.events and all(type(e) is AuditEventView for e in loaded.events)


PROBE = """
import asyncio, inspect, json, sys
from datetime import UTC, datetime
from pathlib import Path

from operator_core.clock import FrozenClock
from operator_tui import load_app

OperatorApp = load_app()
seen = {}


def loaded_libraries():
    return sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "pydantic_core"))


class Probe(OperatorApp):
    CSS_PATH = str(Path(inspect.getfile(OperatorApp)).parent / str(OperatorApp.CSS_PATH))

    def _started(self):
        seen["rows at the first frame"] = len(self.dashboard.data.approvals)
        seen["imported by the first frame"] = loaded_libraries()
        super()._started()
        seen["imported after it"] = "pydantic" in sys.modules
        seen["subject"] = self.subject.name
        seen["actions"] = self.executor.registry.list_action_names()


def subject():
    from operator_tui.devtools.fixture import FixtureSubject
    return FixtureSubject()


async def drive(pilot):
    await app.wait_loaded()
    while "actions" not in seen:
        await asyncio.sleep(0.01)
    app.exit()


app = Probe(sys.argv[1], subject_loader=subject,
            clock=FrozenClock(datetime(2026, 3, 14, 9, 30, tzinfo=UTC)))
app.run(headless=True, size=(120, 40), auto_pilot=drive)
print(json.dumps(seen))
"""


def test_the_first_frame_is_drawn_before_pydantic_is_imported(db_path: Path) -> None:
    """A fresh interpreter: the dashboard's first frame (with its rows) comes before pydantic
    is imported; the subject, its definitions and the executor come right after it."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(db_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["rows at the first frame"] > 0
    assert seen["imported by the first frame"] == []
    assert seen["imported after it"] is True
    assert seen["subject"] == FixtureSubject().name
    assert "drain_store" in seen["actions"]
