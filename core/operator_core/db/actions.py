"""How actions persist: ``ActionDB``, one long-lived SQLite connection per process.

A facade over the modules beside it, one concern each: ``connection`` (the connection and
the ways to run a function on it), ``proposals``, ``workflows``, ``attempts`` and
``runner_cycle`` (the runner's transactions), ``leases``, ``safety`` (the kill switch),
``snapshot`` (the dashboard's reads) and ``compat`` (the seeds' API). The names the rest of
the engine, the dashboard and the seeds import from here stay importable from here.
"""

from __future__ import annotations

from operator_core.db.attempts import RunnerOps
from operator_core.db.budget_ops import BudgetOps
from operator_core.db.compat import Compat
from operator_core.db.connection import PAGE_SIZE, Store
from operator_core.db.leases import NEXT_WAKEUP_SQL, LeaseOps
from operator_core.db.proposals import ProposalOps
from operator_core.db.reads import Reads
from operator_core.db.records import GENESIS_HASH, AttemptResult, AuditEntry, Claim
from operator_core.db.runner_cycle import CLAIM_SQL
from operator_core.db.safety import KILL_SWITCH_ACTOR_REASON, SafetyOps
from operator_core.db.snapshot import Counts, Snapshot
from operator_core.db.workflows import WorkflowOps
from operator_core.errors import observe_message

__all__ = [
    "CLAIM_SQL",
    "GENESIS_HASH",
    "KILL_SWITCH_ACTOR_REASON",
    "NEXT_WAKEUP_SQL",
    "PAGE_SIZE",
    "ActionDB",
    "AttemptResult",
    "AuditEntry",
    "Claim",
    "Counts",
    "Snapshot",
    "observe_message",
]


class ActionDB(
    ProposalOps, WorkflowOps, RunnerOps, LeaseOps, SafetyOps, BudgetOps, Reads, Compat, Store
):
    """Async access to the action tables, over one aiosqlite connection: each method one
    function run on it, in one transaction (see the module each comes from)."""
