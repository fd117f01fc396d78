"""Anchoring the audit chain outside the database: a signing key, signed checkpoints, the
sinks they are published to, and verification of the events against them.

Nothing here reads or writes the database: functions take rows, so the writer, the CLI and
the dashboard wire them in (the writer reports each append to a ``Publisher``)."""
