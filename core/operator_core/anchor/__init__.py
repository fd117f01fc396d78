"""Anchoring the audit chain outside the database: a signing key, signed checkpoints, the
sinks they are published to, and verification of the events against them.

One direction: ``db/`` imports ``chain`` (the one hash function, shared by writer and
verifier) and, when a connection opens, ``runtime``; nothing here imports ``db``.

- the audit writer reports each committed append to ``publisher.Publisher.observe``
  (``runtime.start_publisher`` builds it from the environment, see ``config``);
- ``operator audit verify`` calls ``check.verify_with_origin`` with the checkpoints read by
  ``check.read_checkpoint_files`` (``parallel.verify_file`` for the chain of a very large
  file);
- ``operator audit export`` / ``verify --ledger`` call ``check.export_database`` and
  ``ledger.verify_ledger_file``;
- the dashboard's header reads ``runtime.anchor_status``.
"""
