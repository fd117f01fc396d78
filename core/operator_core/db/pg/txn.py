"""How a transaction begins on PostgreSQL (why: see pg/connection.py and docs/postgres.md)."""

from __future__ import annotations

WRITE_LOCK = 0x6F70657261746F72
"""The advisory lock every write transaction and every migration takes first ('operator'
in ASCII). Advisory locks belong to one database, so two Operator databases on one server
never wait for each other."""

CHAIN_LOCK = 0x6F70636861696E00
"""The audit chain's lock ('opchain'): taken, after WRITE_LOCK shared, only by a runner
cycle appending its buffered events (audit.flush); an exclusive writer never needs it."""

BEGIN_WRITE = f"BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

# A runner cycle: beside other cycles, never beside an exclusive writer (db/shared.py).
BEGIN_CYCLE = (
    f"BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock_shared({WRITE_LOCK})"
)

# The chain lock, then the chain's head (the primary key's last row): two statements in
# one round trip, so the head's snapshot is taken once the lock is held.
LOCK_CHAIN = (
    f"SELECT pg_advisory_xact_lock({CHAIN_LOCK}); "
    "SELECT hash FROM action_audit_log ORDER BY id DESC LIMIT 1"
)
