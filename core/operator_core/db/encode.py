"""JSON as the engine stores it: sorted keys, compact, ASCII, anything unknown as ``str``.

Every value the engine writes as JSON (parameters, results, audit events and the audit
hash's payload) goes through ``dumps``, so the bytes an audit hash covers have one
definition.
"""

from __future__ import annotations

import json

PLAIN = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)

dumps = PLAIN.encode
"""The stored JSON text of ``value``."""
