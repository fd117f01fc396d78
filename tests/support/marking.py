"""``TestSubject`` whose ``ok`` action also appends a marker line per attempt to
``$MARK_FILE``: ``host pid proposal attempt time``, one ``write`` each (O_APPEND: lines from
several processes never interleave). A witness outside the database of what really ran."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from operator_core.subjects.base import ExecutionContext

from tests.support.subjects import TestSubject


class MarkingSubject(TestSubject):
    __test__ = False
    name = "marking"

    async def execute(
        self, action_name: str, parameters: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any] | None:
        if action_name == "ok":
            line = (
                f"{socket.gethostname()} {os.getpid()} {context.proposal.id} "
                f"{context.attempt} {time.time():.6f}\n"
            )
            fd = os.open(os.environ["MARK_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        return await super().execute(action_name, parameters, context)
