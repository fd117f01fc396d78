"""The runner's claim, written out per engine: one statement, under the runner's lease
(runner_cycle.claim_tx runs it)."""

from __future__ import annotations

from operator_core.db.dialect import Sql, translate

# The claim: due validated work and due retries, each read in order from its own partial
# index (idx_ready_validated, idx_retry_due) and merged under one LIMIT; never a sort of the
# whole backlog (``:only``'s CAST gives PostgreSQL its type; SQLite reads it as is). It
# returns only the columns the claimed action's model is built from (each
# column returned is one more value converted for every row).
_CLAIM_SQLITE = """
UPDATE action_proposals SET status = 'executing', claimed_by = :runner,
    lease_expires_at = :lease, next_retry_at = NULL, finished_at = NULL, updated_at = :now
WHERE id IN (
    SELECT id FROM (
        SELECT id, k FROM (
            SELECT p.id AS id, COALESCE(p.scheduled_at, p.proposed_at) AS k
            FROM action_proposals p INDEXED BY idx_ready_validated
            WHERE p.status = 'validated'
              AND (p.requires_approval = 0 OR p.approved_at IS NOT NULL)
              AND COALESCE(p.scheduled_at, p.proposed_at) <= :now
              AND p.cancel_requested = 0
              AND (CAST(:only AS BIGINT) IS NULL OR p.id = :only)
              AND (p.depends_on_proposal_id IS NULL OR EXISTS (
                  SELECT 1 FROM action_proposals d
                  WHERE d.id = p.depends_on_proposal_id AND d.status = 'completed'))
            ORDER BY COALESCE(p.scheduled_at, p.proposed_at), p.id
            LIMIT :lim) AS ready
        UNION ALL
        SELECT id, k FROM (
            SELECT p.id AS id, p.next_retry_at AS k
            FROM action_proposals p INDEXED BY idx_retry_due
            WHERE p.status = 'failed' AND p.next_retry_at IS NOT NULL
              AND p.next_retry_at <= :now
              AND (p.requires_approval = 0 OR p.approved_at IS NOT NULL)
              AND p.cancel_requested = 0
              AND (CAST(:only AS BIGINT) IS NULL OR p.id = :only)
            ORDER BY p.next_retry_at, p.id
            LIMIT :lim) AS retries
    ) AS due
    ORDER BY k, id
    LIMIT :lim)
RETURNING id, ticket_id, action_name, action_type, parameters, reason, status, proposed_at,
    proposed_by, validated_at, cancelled_at, cancel_reason, requires_approval, approved_at,
    approved_by, rejected_at, rejected_by, rejection_reason, expires_at, workflow_id,
    execution_order, depends_on_proposal_id, delay_seconds, scheduled_at, retry_count,
    max_retries, next_retry_at, last_error, claimed_by, lease_expires_at, cancel_requested
"""

# The same claim on PostgreSQL, where runner cycles run side by side (db/shared.py): each
# branch locks the due rows it reads and skips those another cycle holds, so a batch still
# fills past them; READ COMMITTED checks each row again once locked, so no two cycles ever
# claim one action (the same indexes, by the planner's choice).
_CLAIM_POSTGRES = """
UPDATE action_proposals SET status = 'executing', claimed_by = :runner,
    lease_expires_at = :lease, next_retry_at = NULL, finished_at = NULL, updated_at = :now
WHERE id IN (
    SELECT id FROM (
        SELECT id, k FROM (
            SELECT p.id AS id, COALESCE(p.scheduled_at, p.proposed_at) AS k
            FROM action_proposals p
            WHERE p.status = 'validated'
              AND (p.requires_approval = 0 OR p.approved_at IS NOT NULL)
              AND COALESCE(p.scheduled_at, p.proposed_at) <= :now
              AND p.cancel_requested = 0
              AND (CAST(:only AS BIGINT) IS NULL OR p.id = :only)
              AND (p.depends_on_proposal_id IS NULL OR EXISTS (
                  SELECT 1 FROM action_proposals d
                  WHERE d.id = p.depends_on_proposal_id AND d.status = 'completed'))
            ORDER BY COALESCE(p.scheduled_at, p.proposed_at), p.id
            LIMIT :lim
            FOR UPDATE OF p SKIP LOCKED) AS ready
        UNION ALL
        SELECT id, k FROM (
            SELECT p.id AS id, p.next_retry_at AS k
            FROM action_proposals p
            WHERE p.status = 'failed' AND p.next_retry_at IS NOT NULL
              AND p.next_retry_at <= :now
              AND (p.requires_approval = 0 OR p.approved_at IS NOT NULL)
              AND p.cancel_requested = 0
              AND (CAST(:only AS BIGINT) IS NULL OR p.id = :only)
            ORDER BY p.next_retry_at, p.id
            LIMIT :lim
            FOR UPDATE OF p SKIP LOCKED) AS retries
    ) AS due
    ORDER BY k, id
    LIMIT :lim)
RETURNING id, ticket_id, action_name, action_type, parameters, reason, status, proposed_at,
    proposed_by, validated_at, cancelled_at, cancel_reason, requires_approval, approved_at,
    approved_by, rejected_at, rejected_by, rejection_reason, expires_at, workflow_id,
    execution_order, depends_on_proposal_id, delay_seconds, scheduled_at, retry_count,
    max_retries, next_retry_at, last_error, claimed_by, lease_expires_at, cancel_requested
"""

CLAIM_SQL = Sql(sqlite=_CLAIM_SQLITE, postgres=translate(_CLAIM_POSTGRES))

__all__ = ["CLAIM_SQL"]
