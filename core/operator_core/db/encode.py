"""JSON as the engine stores it: sorted keys, compact, ASCII, anything unknown as ``str``.

The one module that touches CPython's private ``json.encoder.c_make_encoder``: the C encoder
``json.JSONEncoder.encode`` ends up in, called directly for the small dictionaries an action
writes (events, parameters). Held to the plain encoder by tests/core/test_encoding.py.
"""

from __future__ import annotations

import json
from typing import Any

PLAIN = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)

# Without the circular reference check: a circular value recurses until RecursionError, and
# then goes through PLAIN for its usual ValueError.
_C_ENCODE = (
    json.encoder.c_make_encoder(
        None, str, json.encoder.encode_basestring_ascii, None, ":", ",", True, False, True
    )
    if getattr(json.encoder, "c_make_encoder", None) is not None
    else None
)


def dumps(value: Any) -> str:
    """``PLAIN.encode(value)``."""
    if _C_ENCODE is None:
        return PLAIN.encode(value)
    try:
        return "".join(_C_ENCODE(value, 0))
    except RecursionError:
        return PLAIN.encode(value)
