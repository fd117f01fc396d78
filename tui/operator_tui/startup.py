"""What ``operator tui`` does around its first frame: the interpreter tuned until it is up,
then the subject loaded and the executor made (their modules import pydantic, which the
first frame does not need)."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from operator_core.clock import Clock
from operator_core.db.actions import ActionDB
from operator_core.db.url import DbTarget
from operator_core.errors import OperatorError

if TYPE_CHECKING:
    from operator_core.actions.executor import ActionExecutor
    from operator_core.subjects.base import Subject

STARTUP_SWITCH_INTERVAL = 0.0005
"""The interpreter's thread switch interval (seconds) until the first frame is up. Textual
writes frames from its own thread, which needs the interpreter lock; at the default 5 ms it
waited behind the events that follow the first frame (the driver's first resize relays the
screen out) before the first frame reached the terminal."""


class StartupTuning:
    """The garbage collector waits until the first frame is up: start-up builds objects that
    live as long as the process (modules, classes, pydantic schemas, styles), and collecting
    meanwhile scanned them again and again. Until then threads also take turns more often
    (``STARTUP_SWITCH_INTERVAL``), so the first frame is written as soon as it is drawn."""

    def __init__(self) -> None:
        self.switch_interval = sys.getswitchinterval()
        """The interpreter's switch interval before ``running`` lowered it."""

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Around ``App.run``: tuned from here, everything restored after."""
        gc.disable()
        self.switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(STARTUP_SWITCH_INTERVAL, self.switch_interval))
        try:
            yield
        finally:
            sys.setswitchinterval(self.switch_interval)
            gc.enable()

    def first_frame_drawn(self) -> None:
        """What start-up built is frozen out of the collector's sight (with the start-up
        garbage among it, kept once rather than paying a full collection now), the collector
        resumes and threads take turns at the usual interval again."""
        if not gc.isenabled():  # paused by ``running`` (not under a test's run_test)
            gc.freeze()
            gc.enable()
            sys.setswitchinterval(self.switch_interval)


def load_subject(loader: Callable[[], Subject]) -> tuple[Subject | None, str | None]:
    """The subject ``loader`` gives, or the one line that says why it could not."""
    try:
        return loader(), None
    except OperatorError as exc:
        return None, str(exc)
    except Exception as exc:  # the subject's module or class itself failed
        return None, f"cannot load the subject: {type(exc).__name__}: {exc}"


def make_executor(
    db_path: Path, db: ActionDB, subject: Subject | None, approval_mode: bool, clock: Clock
) -> ActionExecutor:
    """The ActionExecutor every key goes through, over the dashboard's ActionDB, with the
    registry of the subject's actions. Their definitions are read later (``load``): the
    dashboard's keys do not need them, the runner and agent of the demo start later."""
    from operator_core.actions.executor import ActionExecutor
    from operator_core.actions.registry import ActionRegistry

    registry = ActionRegistry.from_subject(subject, lazy=True) if subject else ActionRegistry()
    return ActionExecutor(db_path, registry, approval_mode=approval_mode, clock=clock, db=db)


def open_db(target: DbTarget, clock: Clock) -> ActionDB:
    """The dashboard's database: a SQLite file, or PostgreSQL (its driver imported only
    then), opened in ``on_load``. A PostgreSQL database must hold Operator's schema at this
    version: the dashboard acts on existing work, as ``approve`` does, and never migrates."""
    if target.url is None:
        assert target.path is not None
        return ActionDB(target.path, clock=clock)
    from operator_core.db.pg.store import PgActionDB

    db: ActionDB = PgActionDB(target.url, clock=clock, create=False)
    return db
