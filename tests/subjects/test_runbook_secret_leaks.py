"""A secret used by commands and webhooks never reaches the database, a record, an audit
event, a log line, an error message or a preview: through success, failure, timeout and
cancellation, with programs and servers that echo it back."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from pathlib import Path

from operator_core.model.types import ActionStatus
from operator_core.runner import Runner

from .conftest import HttpServer, Runbooks
from .helpers import engine, run_until_settled
from .leaks import encodings, find, nasty_secret, pieces

SECRET = nasty_secret()

ACTIONS = """
[defaults]
retry = { max_retries = 1, backoff_min = 0.05, backoff_max = 0.05 }

[actions.cmd_ok]
argv = [@PY@, @TOOL@, "echo-env", "TOKEN", "--token={secret:LEAK}"]
secrets_in_argv = true    # the record's argv is redacted too
env = { TOKEN = "{secret:LEAK}" }
timeout = 5

[actions.cmd_fail]
argv = [@PY@, @TOOL@, "echo-env", "TOKEN"]
env = { TOKEN = "{secret:LEAK}", FAIL = "1" }
timeout = 5

[actions.cmd_timeout]
argv = [@PY@, @TOOL@, "echo-env", "TOKEN"]
env = { TOKEN = "{secret:LEAK}", SLEEP = "5" }
timeout = 0.4
kill_grace = 0.1

[actions.cmd_cancel]
argv = [@PY@, @TOOL@, "echo-env", "TOKEN"]
env = { TOKEN = "{secret:LEAK}", SLEEP = "30" }
timeout = 30
kill_grace = 0.1

[actions.http_ok]
url = "@URL@/echo?key={secret:LEAK}"
headers = { X-Extra = "x-{secret:LEAK}" }
auth = { type = "bearer", token = "{secret:LEAK}" }
body = { token = "{secret:LEAK}", text = "with {secret:LEAK} inside" }

[actions.http_basic]
url = "@URL@/echo"
auth = { type = "basic", username = "ops", password = "{secret:LEAK}" }

[actions.http_404]
url = "@URL@/missing?key={secret:LEAK}"
auth = { type = "custom", header = "X-Api-Key", value = "{secret:LEAK}" }

[actions.http_500]
url = "@URL@/down?key={secret:LEAK}"
auth = { type = "bearer", token = "{secret:LEAK}" }

[actions.http_timeout]
url = "@URL@/slow?key={secret:LEAK}"
timeout = 0.3

[actions.http_refused]
url = "http://127.0.0.1:@CLOSED@/x?key={secret:LEAK}"
"""

FINISHED = {
    "cmd_ok": ActionStatus.COMPLETED,
    "cmd_fail": ActionStatus.FAILED,
    "cmd_timeout": ActionStatus.FAILED,
    "http_ok": ActionStatus.COMPLETED,
    "http_basic": ActionStatus.COMPLETED,
    "http_404": ActionStatus.FAILED,
    "http_500": ActionStatus.FAILED,
    "http_timeout": ActionStatus.FAILED,
    "http_refused": ActionStatus.FAILED,
}


NEEDLES = pieces(encodings(SECRET) | encodings(base64.b64encode(f"ops:{SECRET}".encode()).decode()))


def _assert_clean(where: str, data: bytes | str) -> None:
    blob = data.encode() if isinstance(data, str) else data
    assert find(blob, NEEDLES) == [], f"secret found in {where}"


async def test_secret_never_reaches_db_records_audit_logs_or_previews(
    runbooks: Runbooks,
    http_server: HttpServer,
    closed_port: int,
    tmp_path: Path,
    monkeypatch,
    caplog,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPERATOR_SECRET_LEAK", SECRET)
    http_server.slow_seconds = 0.6
    subject = runbooks.load(
        ACTIONS.replace("@URL@", http_server.url).replace("@CLOSED@", str(closed_port))
    )
    db = tmp_path / "ops.db"
    ids: dict[str, int] = {}
    async with engine(db, subject) as ex:
        for name, status in FINISHED.items():
            p = await ex.propose_action(name, {}, reason=f"leak test {name}")
            assert p.id is not None
            ids[name] = p.id
            done = await run_until_settled(ex, p.id)
            assert done.status == status, (name, done.last_error)

        # cancellation: the kill switch, pulled from a second connection mid-run
        p = await ex.propose_action("cmd_cancel", {}, reason="leak test cancel")
        assert p.id is not None
        ids["cmd_cancel"] = p.id
        runner = Runner(ex, poll_interval=0.05, grace_seconds=1.0)
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(0.5)
        async with engine(db, subject) as other:
            assert (await other.kill_switch("tester@host")).executing_signalled == [p.id]
            deadline = time.monotonic() + 3
            while (await other.db.get_proposal(p.id)).status != ActionStatus.CANCELLED:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        runner.request_stop()
        await asyncio.wait_for(task, 5)

        records = {name: await ex.db.list_records(pid) for name, pid in ids.items()}
        proposals = [await ex.db.get_proposal(pid) for pid in ids.values()]
        audit = await ex.db.list_audit_events(limit=10_000)
        wal_bytes = b"".join(f.read_bytes() for f in tmp_path.glob("ops.db*") if f.is_file())
    file_bytes = b"".join(f.read_bytes() for f in tmp_path.glob("ops.db*") if f.is_file())

    # the secret was really used, and echoed back by the program and the server
    assert any(SECRET in r.headers.get("Authorization", "") for r in http_server.requests)
    assert any("%20f%g%22h" in r.path for r in http_server.requests)  # httpx's own encoding
    ok = records["cmd_ok"][-1].result_data
    assert ok is not None and "value={secret:LEAK}" in ok["stdout_tail"]
    assert "--token={secret:LEAK}" in ok["argv"]
    echoed = records["http_ok"][-1].result_data
    assert echoed is not None and "{secret:LEAK}" in echoed["body"]
    assert echoed["url"].endswith("/echo?key={secret:LEAK}")
    assert len(records["cmd_cancel"]) == 1
    assert "kill switch" in (records["cmd_cancel"][0].error_message or "")

    dump = json.dumps(
        {
            "records": {n: [r.model_dump(mode="json") for r in rs] for n, rs in records.items()},
            "proposals": [p.model_dump(mode="json") for p in proposals if p is not None],
            "audit": [e.model_dump(mode="json") for e in audit],
        }
    )
    _assert_clean("records, proposals or audit events", dump)
    _assert_clean("the database files while open", wal_bytes)
    _assert_clean("the database files after close", file_bytes)
    _assert_clean("captured logs", caplog.text)
    _assert_clean("captured log messages", "\n".join(r.getMessage() for r in caplog.records))
    for name in [*FINISHED, "cmd_cancel"]:
        preview = subject.preview(name, {})
        assert preview is not None and "{secret:LEAK}" in preview
        _assert_clean(f"the preview of {name}", preview)
