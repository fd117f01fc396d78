"""The seeds' own <verify> snippets, copied verbatim, run against the package unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SEED_002_TYPES = """from operator_core.model.types import ActionProposal, ActionRecord, ActionStatus, ActionType; print('Types OK')"""
SEED_002_SCHEMA = (
    """from operator_core.db.schema import SCHEMA_SQL, ACTIONS_SCHEMA_SQL; print('Schema OK')"""
)
SEED_002_DB = """from operator_core.db.actions import ActionDB; print('ActionDB OK')"""
SEED_002_INTEGRATION = """
import asyncio
from pathlib import Path
from operator_core.db.actions import ActionDB
from operator_core.model.types import ActionProposal, ActionStatus, ActionType
from datetime import datetime

async def test():
    async with ActionDB(Path("/tmp/test_actions.db")) as db:
        p = ActionProposal(
            action_name="transfer_leader",
            action_type=ActionType.SUBJECT,
            parameters={"region_id": 1, "to_store_id": "2"},
            reason="Test proposal",
            status=ActionStatus.PROPOSED,
            proposed_at=datetime.now(),
            proposed_by="agent"
        )
        created = await db.create_proposal(p)
        assert created.id is not None
        fetched = await db.get_proposal(created.id)
        assert fetched.action_name == "transfer_leader"
        print("Integration test passed")

asyncio.run(test())
"""
SEED_000_TYPES = """from operator_core.model.types import WorkflowStatus, WorkflowProposal, ActionProposal; p = ActionProposal(action_name='test', reason='test'); print(f'workflow_id={p.workflow_id}, scheduled_at={p.scheduled_at}, retry_count={p.retry_count}')"""
SEED_000_SCHEMA = """from operator_core.db.schema import ACTIONS_SCHEMA_SQL; assert 'CREATE TABLE IF NOT EXISTS workflows' in ACTIONS_SCHEMA_SQL; assert 'idx_action_proposals_workflow' in ACTIONS_SCHEMA_SQL; print('Schema extensions present')"""
SEED_000_MIGRATION = """
import asyncio
from pathlib import Path
from operator_core.db.actions import ActionDB
from operator_core.model.types import ActionProposal, ActionStatus

async def test():
    import tempfile
    with tempfile.NamedTemporaryFile(suffix='.db', delete=False) as f:
        db_path = Path(f.name)

    async with ActionDB(db_path) as db:
        # Create proposal with new fields
        p = ActionProposal(
            action_name='test',
            reason='test',
            workflow_id=None,
            scheduled_at=None,
            retry_count=0,
        )
        created = await db.create_proposal(p)
        fetched = await db.get_proposal(created.id)
        print(f'Created proposal with workflow_id={fetched.workflow_id}, retry_count={fetched.retry_count}')

    import os
    os.unlink(db_path)

asyncio.run(test())
"""
SEED_001_WORKFLOW = """
import asyncio
from pathlib import Path
from operator_core.db.actions import ActionDB
from operator_core.model.types import ActionProposal, ActionStatus

async def test():
    import tempfile
    with tempfile.NamedTemporaryFile(suffix='.db', delete=False) as f:
        db_path = Path(f.name)

    async with ActionDB(db_path) as db:
        # Create workflow with 2 actions
        actions = [
            ActionProposal(action_name='step1', reason='first step'),
            ActionProposal(action_name='step2', reason='second step'),
        ]
        wf_id = await db.create_workflow('test_wf', 'test workflow', actions)
        print(f'Created workflow {wf_id}')

        # List workflow actions
        wf_actions = await db.list_workflow_actions(wf_id)
        print(f'Got {len(wf_actions)} actions in order: {[a.action_name for a in wf_actions]}')

        # Get workflow
        wf = await db.get_workflow(wf_id)
        print(f'Workflow status: {wf.status.value}')

    import os
    os.unlink(db_path)

asyncio.run(test())
"""
SEED_001_SCHEDULED = """
import asyncio
from pathlib import Path
from datetime import datetime, timedelta
from operator_core.db.actions import ActionDB
from operator_core.model.types import ActionProposal, ActionStatus

async def test():
    import tempfile
    with tempfile.NamedTemporaryFile(suffix='.db', delete=False) as f:
        db_path = Path(f.name)

    async with ActionDB(db_path) as db:
        # Create scheduled action (in the past - ready)
        p = ActionProposal(
            action_name='check',
            reason='follow-up',
            status=ActionStatus.VALIDATED,
            scheduled_at=datetime.now() - timedelta(minutes=1),
        )
        created = await db.create_proposal(p)
        # Approve it so it shows up
        await db.approve_proposal(created.id)

        # Query ready scheduled
        ready = await db.list_ready_scheduled()
        print(f'Ready scheduled: {len(ready)} action(s)')

    import os
    os.unlink(db_path)

asyncio.run(test())
"""
SEED_001_RETRY = """
import asyncio
from pathlib import Path
from datetime import datetime, timedelta
from operator_core.db.actions import ActionDB
from operator_core.model.types import ActionProposal, ActionStatus

async def test():
    import tempfile
    with tempfile.NamedTemporaryFile(suffix='.db', delete=False) as f:
        db_path = Path(f.name)

    async with ActionDB(db_path) as db:
        # Create failed action with retry scheduled
        p = ActionProposal(
            action_name='flaky_op',
            reason='test retry',
            status=ActionStatus.FAILED,
            retry_count=1,
            max_retries=3,
            next_retry_at=datetime.now() - timedelta(seconds=10),
            last_error='Connection timeout',
        )
        created = await db.create_proposal(p)

        # Query retry eligible
        eligible = await db.list_retry_eligible()
        print(f'Retry eligible: {len(eligible)} action(s)')

        # Increment retry
        await db.increment_retry_count(created.id, 'Second failure')
        fetched = await db.get_proposal(created.id)
        print(f'Retry count after increment: {fetched.retry_count}')

    import os
    os.unlink(db_path)

asyncio.run(test())
"""
SEED_003_RETRY = """
from operator_core.actions.retry import RetryConfig
from datetime import datetime

config = RetryConfig(max_attempts=3, min_wait_seconds=1.0)

# Test backoff calculation
for attempt in range(3):
    next_retry = config.calculate_next_retry(attempt)
    delay = (next_retry - datetime.now()).total_seconds()
    print(f'Attempt {attempt}: retry in {delay:.1f}s')

# Test should_retry
print(f'Should retry at 0: {config.should_retry(0)}')
print(f'Should retry at 3: {config.should_retry(3)}')
"""
SEED_003_PROPOSE_WORKFLOW = """
# Just verify the method exists and has correct signature
from operator_core.actions.executor import ActionExecutor
import inspect

sig = inspect.signature(ActionExecutor.propose_workflow)
params = list(sig.parameters.keys())
print(f'propose_workflow params: {params}')
assert 'name' in params
assert 'action_recommendations' in params
print('propose_workflow method exists with correct signature')
"""
SEED_003_SCHEDULE_RETRY = """
from operator_core.actions.executor import ActionExecutor
import inspect

# Check __init__ has retry_config param
init_sig = inspect.signature(ActionExecutor.__init__)
assert 'retry_config' in init_sig.parameters
print('__init__ has retry_config parameter')

# Check schedule_next_retry exists
assert hasattr(ActionExecutor, 'schedule_next_retry')
retry_sig = inspect.signature(ActionExecutor.schedule_next_retry)
assert 'proposal_id' in retry_sig.parameters
assert 'error_message' in retry_sig.parameters
print('schedule_next_retry method exists with correct signature')
"""
SEED_003_EXPORT = """from operator_core.actions import RetryConfig"""

CASES = [
    ("002-types", SEED_002_TYPES, [r"^Types OK$"]),
    ("002-schema", SEED_002_SCHEMA, [r"^Schema OK$"]),
    ("002-db", SEED_002_DB, [r"^ActionDB OK$"]),
    ("002-integration", SEED_002_INTEGRATION, [r"^Integration test passed$"]),
    ("000-types", SEED_000_TYPES, [r"^workflow_id=None, scheduled_at=None, retry_count=0$"]),
    ("000-schema", SEED_000_SCHEMA, [r"^Schema extensions present$"]),
    (
        "000-migration",
        SEED_000_MIGRATION,
        [r"^Created proposal with workflow_id=None, retry_count=0$"],
    ),
    (
        "001-workflow",
        SEED_001_WORKFLOW,
        [
            r"^Created workflow 1$",
            r"^Got 2 actions in order: \['step1', 'step2'\]$",
            r"^Workflow status: pending$",
        ],
    ),
    ("001-scheduled", SEED_001_SCHEDULED, [r"^Ready scheduled: 1 action\(s\)$"]),
    (
        "001-retry",
        SEED_001_RETRY,
        [r"^Retry eligible: 1 action\(s\)$", r"^Retry count after increment: 2$"],
    ),
    (
        "003-retry",
        SEED_003_RETRY,
        [
            r"^Attempt 0: retry in (1\.[0-5]|1\.[0-9])s$",
            r"^Attempt 1: retry in [2-3]\.\ds$",
            r"^Attempt 2: retry in [4-6]\.\ds$",
            r"^Should retry at 0: True$",
            r"^Should retry at 3: False$",
        ],
    ),
    (
        "003-propose-workflow",
        SEED_003_PROPOSE_WORKFLOW,
        [r"^propose_workflow method exists with correct signature$"],
    ),
    (
        "003-schedule-retry",
        SEED_003_SCHEDULE_RETRY,
        [
            r"^__init__ has retry_config parameter$",
            r"^schedule_next_retry method exists with correct signature$",
        ],
    ),
    ("003-export", SEED_003_EXPORT, []),
]


@pytest.mark.parametrize(("name", "code", "expected"), CASES, ids=[c[0] for c in CASES])
def test_seed_verify_snippet_runs_unchanged(
    name: str, code: str, expected: list[str], tmp_path: Path
) -> None:
    import re

    for leftover in Path("/tmp").glob("test_actions.db*"):
        leftover.unlink()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for pattern in expected:
        assert any(re.match(pattern, line) for line in lines), (pattern, proc.stdout)
