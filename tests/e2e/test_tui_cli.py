"""``operator tui`` itself: the real command in a pseudo-terminal."""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import cli_argv, cli_env, dump, query, seed, wait_for

pytestmark = pytest.mark.sqlite_only(
    "drives a SQLite file's dashboard in a pty; on PostgreSQL: test_pg_tui_cli.py"
)

COLS, ROWS = 120, 36


class Terminal:
    """``operator ... tui`` in its own pseudo-terminal; what it writes is kept."""

    def __init__(self, db: Path | str, subject: str, state: Path | None = None) -> None:
        """``db``: a file, or a PostgreSQL URL (then ``state``: where the state goes)."""
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        home = state if state is not None else Path(db).parent
        env = cli_env(home, TERM="xterm-256color", COLUMNS=str(COLS), LINES=str(ROWS))
        self.proc = subprocess.Popen(
            cli_argv(db, "tui", subject=subject),  # type: ignore[arg-type]
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.output = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(self.master, 65536):
                self.output += chunk

    def wait_for(self, text: str, timeout: float = 20.0, after: int = 0) -> None:
        """Until ``text`` is written (at or after byte ``after`` of the output)."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output[after:]:
            assert self.proc.poll() is None, f"exited ({self.proc.returncode}) before {text!r}"
            assert time.monotonic() < deadline, f"{text!r} never shown"
            time.sleep(0.02)

    def press(self, key: str) -> None:
        os.write(self.master, key.encode())

    def exit_code(self, timeout: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._reader.join(2)
            os.close(self.master)

    def quit(self, tries: int = 10) -> int:
        """``q`` until the app ends; its exit code. A ``q`` written right behind the key that
        closes a dialog can reach the dialog before it closes, and is then rightly dropped
        (a key never acts on a screen it was not typed into), so one ``q`` may not do."""
        for _ in range(tries):
            self.press("q")
            with contextlib.suppress(subprocess.TimeoutExpired):
                return self.proc.wait(2.0)
        return self.exit_code()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def ended(self) -> tuple[int, str]:
        """Its exit code (killed if it does not end in time) and everything it wrote."""
        try:
            code = self.exit_code()
        finally:
            self.kill()
        return code, self.output.decode(errors="replace")


def _guarded(db: Path) -> None:
    seed(db, lambda ex: ex.propose_action("guarded", {}, "needs a human"))


def test_tui_shows_the_database_and_quits_on_q(db: Path) -> None:
    _guarded(db)
    before = dump(db)
    term = Terminal(db, "tests.support.subjects:TestSubject")
    try:
        term.wait_for("Approvals · 1")
        term.press("q")
        assert term.exit_code() == 0
    finally:
        term.kill()
    assert b"Traceback" not in term.output
    assert dump(db) == before


def test_tui_with_a_subject_that_cannot_be_loaded_ends_with_one_line(db: Path) -> None:
    _guarded(db)
    before = dump(db)
    code, text = Terminal(db, "nosuch_module:Thing").ended()
    assert code == 1
    assert "operator: cannot import subject module 'nosuch_module'" in text
    assert "Traceback" not in text
    assert dump(db) == before


def test_tui_without_a_database_says_so_before_any_screen(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    code, text = Terminal(missing, "tests.support.subjects:TestSubject").ended()
    assert code == 1
    assert "operator: no database at" in text and "Traceback" not in text
    assert "\x1b[?1049h" not in text, "no full-screen mode was entered"
    assert not missing.exists()


def _events_of(db: Path, proposal_id: int) -> list[str]:
    rows = query(
        db,
        "SELECT event_type FROM action_audit_log WHERE proposal_id = ? ORDER BY id",
        (proposal_id,),
    )
    return [r["event_type"] for r in rows]


def test_r_and_a_reason_in_one_write_reject_and_approve_nothing(db: Path) -> None:
    """``r`` and ``bad idea`` arrive in one read of the terminal (a paste, SSH coalescing
    keystrokes): the ``a`` of "bad idea" approved the action being rejected. And ``r`` then
    ``zq`` quit the dashboard."""
    first = seed(db, lambda ex: ex.propose_action("guarded", {}, "needs a human")).id
    term = Terminal(db, "tests.support.subjects:TestSubject")
    try:
        term.wait_for("Approvals · 1")
        term.press("rbad idea")  # one write
        term.wait_for("bad idea")
        term.press("\r")
        wait_for(lambda: "rejected" in _events_of(db, first), 20, what="the rejection")
        mark = len(term.output)
        second = seed(db, lambda ex: ex.propose_action("guarded", {}, "another one")).id
        term.wait_for("another one", after=mark)
        mark = len(term.output)
        term.press("rzq")
        term.wait_for("zq", after=mark)
        term.press("\r")
        wait_for(lambda: "rejected" in _events_of(db, second), 20, what="the second rejection")
        assert term.quit() == 0
    finally:
        term.kill()
    assert b"Traceback" not in term.output
    assert _events_of(db, first) == ["proposed", "rejected"]
    assert _events_of(db, second) == ["proposed", "rejected"]
    reasons = [
        r["rejection_reason"]
        for r in query(db, "SELECT rejection_reason FROM action_proposals ORDER BY id")
    ]
    assert reasons == ["bad idea", "zq"]


def test_k_and_text_in_one_write_neither_approve_nor_confirm(db: Path) -> None:
    """The kill switch's confirm dialog is never answered by keys typed before it was shown
    (the ``y`` of "yes"), and none of them reaches the dashboard (the ``a`` approves)."""
    proposal = seed(db, lambda ex: ex.propose_action("guarded", {}, "needs a human")).id
    term = Terminal(db, "tests.support.subjects:TestSubject")
    try:
        term.wait_for("Approvals · 1")
        term.press("Kbad day, yes")  # one write
        term.wait_for("Keys ignored")
        term.press("n")
        assert term.quit() == 0
    finally:
        term.kill()
    assert _events_of(db, proposal) == ["proposed"]
    assert query(db, "SELECT mode FROM safety_state")[0]["mode"] == "execute"
