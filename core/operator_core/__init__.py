"""Operator engine: actions, persistence, executor, runner, subjects, CLI."""

import time

STARTED_NS = time.time_ns()
"""When this process first imported Operator: before it read any file of its subject, so a
file changed earlier is read as it is now (``cli/subject_facts.py``)."""
