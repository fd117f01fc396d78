"""The PostgreSQL backend: connection, rows, schema (see docs/postgres.md)."""
