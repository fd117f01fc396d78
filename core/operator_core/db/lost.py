"""What the database says of attempts whose runner was lost: the recovering runner reads
where their commands ran, ends what is left of them, then records what it found."""

from __future__ import annotations

from typing import NamedTuple


class LostAttempt(NamedTuple):
    """The open attempt of an action whose lease ran out, and where its command ran (all
    None when it started no command, or died before it could say)."""

    proposal_id: int
    host: str | None
    pid: int | None
    pgid: int | None
    process_start: str | None


class LostNote(NamedTuple):
    """What the recovering runner found of a lost attempt's processes."""

    text: str  # said in the attempt's record and the audit event
    retry: bool  # False: the lost attempt may still be running, so it is not run again


# The open attempt of each action whose lease ran out, with where its command ran: read
# through the status index, each attempt through the one-open-attempt index.
LOST_ATTEMPTS_SQL = """
SELECT p.id, r.host, r.pid, r.pgid, r.process_start
FROM action_proposals p INDEXED BY idx_action_proposals_state
LEFT JOIN action_records r ON r.proposal_id = p.id AND r.completed_at IS NULL
WHERE p.status = 'executing' AND p.status <> 'validated' AND p.lease_expires_at < :now
    AND p.claimed_by IS NOT :runner
LIMIT 1000
"""
