"""Anchoring the audit chain outside the database: a signing key, signed checkpoints, the
sinks they are published to, and verification of the events against them.

Nothing here writes the database, and nothing in ``db/`` needs to import this package:

- the audit writer reports each committed append to ``publisher.Publisher.observe`` (built
  by ``config.publisher_from_env``);
- ``operator audit verify`` calls ``check.verify_database`` with the checkpoints read by
  ``sinks.read_file`` (``parallel.verify_file`` for the chain of a very large file);
- ``operator audit export`` / ``verify --ledger`` call ``ledger.export_ledger_file`` and
  ``ledger.verify_ledger_file``;
- the dashboard's header reads ``Publisher.status()`` or ``sinks.last_in_file``.
"""
