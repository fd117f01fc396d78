"""Secrets echoed back, as an attacker would try it: a real runner process runs commands
that print secrets (whole, base64'd, cut at the tail's edges) and webhooks to servers that
echo the request line, the headers and the body back (200, 500, 404, a hang, a refused
port, answers cut mid-secret), and one action is cancelled mid-run. Then every byte of the
database, its WAL, the CLI's output and the runner's log is searched for every encoding of
every secret and every 6-character piece of them: none may be there."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.cli import main as cli_main

from tests.e2e.conftest import cli_argv, cli_env, query, run_cli, wait_for

from .conftest import HttpServer, Runbooks
from .leaks import encodings, find, nasty_secret, pieces

KEEP = 4 * 4096 + 1024  # what is read of an answer, and kept of an output, before the cut
TAIL = 4096  # what a record keeps of each

RUNBOOK = """
[defaults]
retry = { max_retries = 1, backoff_min = 0.05, backoff_max = 0.05 }
timeout = 15

[actions.http_ok]
url = "@URL@/raw/200?key={secret:TOKEN}&u={secret:UNI}"
headers = { X-Extra = "x-{secret:TOKEN}" }
auth = { type = "bearer", token = "{secret:TOKEN}" }
body = { token = "{secret:TOKEN}", uni = "{secret:UNI}", text = "pw {secret:PASSWORD} in" }

[actions.http_json]
url = "@URL@/echo?key={secret:TOKEN}&u={secret:UNI}"
auth = { type = "custom", header = "X-Api-Key", value = "k {secret:TOKEN}" }
body = { token = "{secret:TOKEN}", uni = "{secret:UNI}" }

[actions.http_basic]
method = "GET"
url = "@URL@/raw/200"
auth = { type = "basic", username = "ops", password = "{secret:PASSWORD}" }

[actions.http_500]
url = "@URL@/raw/500?key={secret:TOKEN}"
auth = { type = "bearer", token = "{secret:TOKEN}" }
body = { uni = "{secret:UNI}" }

[actions.http_404]
url = "@URL@/raw/404?key={secret:TOKEN}&u={secret:UNI}"
auth = { type = "basic", username = "ops", password = "{secret:PASSWORD}" }

[actions.http_timeout]
url = "@URL@/slow?key={secret:TOKEN}&u={secret:UNI}"
auth = { type = "bearer", token = "{secret:TOKEN}" }
timeout = 0.3

[actions.http_refused]
url = "http://127.0.0.1:@CLOSED@/x?key={secret:TOKEN}&u={secret:UNI}"
auth = { type = "bearer", token = "{secret:TOKEN}" }

[actions.http_cut_bearer]
url = "@URL@/raw/200"
headers = { X-Pad = "{pad}" }
auth = { type = "bearer", token = "{secret:TOKEN}" }
params.pad = { type = "integer" }

[actions.http_cut_basic]
url = "@URL@/raw/200"
headers = { X-Pad = "{pad}" }
auth = { type = "basic", username = "ops", password = "{secret:PASSWORD}" }
params.pad = { type = "integer" }

[actions.cmd_leak]
argv = [@PY@, @TOOL@, "leak", "{var}", "{cut}", "{pad}", "{form}"]
env = { TOKEN = "{secret:TOKEN}", UNI = "{secret:UNI}", FAIL = "{fail}" }
params.var = { type = "enum", choices = ["TOKEN", "UNI"] }
params.cut = { type = "integer", default = 0 }
params.pad = { type = "integer", default = 0 }
params.form = { type = "enum", choices = ["plain", "base64"], default = "plain" }
params.fail = { type = "enum", choices = ["0", "1"], default = "0" }

[actions.cmd_timeout]
argv = [@PY@, @TOOL@, "leak", "TOKEN", "0", "0", "plain"]
env = { TOKEN = "{secret:TOKEN}", SLEEP = "10" }
timeout = 0.5
kill_grace = 0.1

[actions.cmd_cancel]
argv = [@PY@, @TOOL@, "leak", "UNI", "0", "0", "plain"]
env = { UNI = "{secret:UNI}", SLEEP = "60" }
timeout = 90
kill_grace = 0.1

[actions.cmd_argv]
argv = [@PY@, @TOOL@, "argv", "--token={secret:TOKEN}", "--uni={secret:UNI}"]
secrets_in_argv = true

[actions.cmd_stdin]
argv = [@PY@, "-c", "import sys; s = sys.stdin.read(); print(s); print(s[3:12], s[-9:])"]
stdin = "{secret:TOKEN}"
"""


def _cuts(value: bytes) -> list[int]:
    """Where a cut leaves 4, 5, 6... bytes of ``value`` on one side, and, for a value with
    multi-byte characters, where it cuts one in half."""
    length = len(value)
    cuts = {4, 5, 6, 9, length // 2, length - 5, length - 4}
    for i, byte in enumerate(value):
        if 0x80 <= byte < 0xC0:  # a continuation byte: the cut lands inside a character
            cuts |= {length - i, i}
    return sorted(c for c in cuts if 4 <= c <= length - 4)


def _proposals(token: str, uni: str, basic: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = [
        {"action_name": name, "parameters": {}}
        for name in (
            "http_ok",
            "http_json",
            "http_basic",
            "http_500",
            "http_404",
            "http_timeout",
            "http_refused",
            "cmd_timeout",
            "cmd_argv",
            "cmd_stdin",
        )
    ]
    out += [
        {"action_name": "cmd_leak", "parameters": {"var": v, "fail": f}}
        for v in ("TOKEN", "UNI")
        for f in ("0", "1")
    ]
    cases = [
        ("TOKEN", "plain", token.encode()),
        ("TOKEN", "base64", base64.b64encode(token.encode())),
        ("UNI", "plain", uni.encode()),
    ]
    for var, form, value in cases:
        for cut in _cuts(value):
            for edge in (TAIL, KEEP):  # the record's tail, and what the runner keeps
                params = {"var": var, "form": form, "cut": cut, "pad": edge - cut}
                out.append({"action_name": "cmd_leak", "parameters": params})
    for name, prefix, value in (
        ("http_cut_bearer", "Bearer ", token.encode()),
        ("http_cut_basic", "Basic ", basic.encode()),
    ):
        for cut in _cuts(value):
            for edge in (TAIL, KEEP):  # the record's head, and what is read of the answer
                pad = edge - len(prefix) - cut
                out.append({"action_name": name, "parameters": {"pad": pad}})
    for p in out:
        p["reason"] = "attack"
    return out


def _cli(capsys: pytest.CaptureFixture[str], env: dict[str, str], *argv: str) -> str:
    """The CLI's own main, in this process (hundreds of calls), with the runner's
    environment but no secrets: what an operator's terminal shows."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({k: v for k, v in env.items() if not k.startswith("OPERATOR_SECRET")})
    try:
        capsys.readouterr()
        code = cli_main(list(argv))
        out, err = capsys.readouterr()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert code == 0, (argv, err)
    return out + err


def _cut_edges(db: Path) -> list[str]:
    """The start of each output tail, and the end of each answer, that was cut inside a
    secret where the runner stopped reading (so the edge shows in the record)."""
    edges = []
    rows = query(
        db,
        "SELECT p.action_name, p.parameters, r.result_data FROM action_records r "
        "JOIN action_proposals p ON p.id = r.proposal_id WHERE r.result_data IS NOT NULL",
    )
    for name, params_json, data_json in rows:
        params, data = json.loads(params_json), json.loads(data_json)
        if name == "cmd_leak" and params.get("pad") == KEEP - params.get("cut", 0):
            edges += [data["stdout_tail"][:20], data["stderr_tail"][:20]]
        prefix = {"http_cut_bearer": "Bearer ", "http_cut_basic": "Basic "}.get(name)
        if prefix and params["pad"] > TAIL:
            assert data["body_truncated"]
            edges.append(data["body"][-3:] + " at the end")
    return edges


def _db_bytes(db: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in db.parent.glob(db.name + "*") if f.is_file()}


def test_no_encoding_or_piece_of_an_echoed_secret_is_written_anywhere(
    runbooks: Runbooks,
    http_server: HttpServer,
    closed_port: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token, password, uni = nasty_secret(), nasty_secret(), nasty_secret("é€ü ✓")
    basic = base64.b64encode(f"ops:{password}".encode()).decode()
    http_server.slow_seconds = 3.0
    path = runbooks.write(
        RUNBOOK.replace("@URL@", http_server.url).replace("@CLOSED@", str(closed_port))
    )
    subject_spec = f"runbook:{path}"
    db = tmp_path / "ops.db"
    env = cli_env(
        tmp_path,
        OPERATOR_SECRET_TOKEN=token,
        OPERATOR_SECRET_PASSWORD=password,
        OPERATOR_SECRET_UNI=uni,
    )

    async def propose(ex: ActionExecutor) -> tuple[list[int], int]:
        many = await ex.propose_actions(_proposals(token, uni, basic), proposed_by="attacker")
        cancel = await ex.propose_action("cmd_cancel", {}, reason="cancel me")
        return [p.id for p in many if p.id is not None], cancel.id or 0

    from operator_core.subjects.loader import load_subject

    registry = ActionRegistry.from_subject(load_subject(subject_spec))
    import asyncio

    async def seed() -> tuple[list[int], int]:
        async with ActionExecutor(db, registry, approval_mode=False) as ex:
            return await propose(ex)

    ids, cancel_id = asyncio.run(seed())
    log = tmp_path / "runner.log"
    with log.open("wb") as err:
        runner = subprocess.Popen(
            cli_argv(db, "run", "--concurrency", "4", "--grace-seconds", "1", subject=subject_spec),
            env=env,
            stdout=err,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: (
                query(db, "SELECT status FROM action_proposals WHERE id = ?", (cancel_id,))[0][0]
                == "executing"
            ),
            timeout=60,
            what="cmd_cancel to start",
        )
        time.sleep(0.5)  # it has printed the secret and sleeps
        _cli(capsys, env, "--db", str(db), "cancel", str(cancel_id), "--reason", "mid-run")
        unsettled = (
            "SELECT count(*) FROM action_proposals WHERE status NOT IN "
            "('completed', 'failed', 'cancelled') OR next_retry_at IS NOT NULL"
        )
        wait_for(lambda: query(db, unsettled)[0][0] == 0, timeout=240, what="every action")
        while_open = _db_bytes(db)
        assert any(name.endswith("-wal") for name in while_open), "no WAL to search"
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.wait(timeout=30)
    after_close = _db_bytes(db)
    runner_log = log.read_bytes()

    # The CLI, as an operator reads it.
    show = ["--db", str(db), "--subject", subject_spec]
    outputs = [
        _cli(capsys, env, *show, "actions", "list", "--limit", "1000"),
        _cli(capsys, env, *show, "actions", "list", "--limit", "1000", "--json"),
        _cli(capsys, env, *show, "audit", "tail", "-n", "100000"),
        _cli(capsys, env, *show, "audit", "tail", "-n", "100000", "--json"),
    ]
    for pid in [*ids, cancel_id]:
        outputs.append(_cli(capsys, env, *show, "actions", "show", str(pid)))
        outputs.append(_cli(capsys, env, *show, "actions", "show", str(pid), "--json"))
    # ... and twice as separate processes, as a terminal runs them
    clean_env = {k: v for k, v in env.items() if not k.startswith("OPERATOR_SECRET")}
    for args in (("audit", "tail", "-n", "100000", "--json"), ("actions", "show", str(ids[0]))):
        done = run_cli(db, *args, env=clean_env, subject=subject_spec)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
    cli_output = "\n".join(outputs).encode()

    # The attack really happened: secrets went out, came back, and cuts were made.
    seen = http_server.requests
    assert any(r.headers.get("Authorization") == f"Bearer {token}" for r in seen)
    assert any(r.headers.get("Authorization") == f"Basic {basic}" for r in seen)
    statuses = dict(query(db, "SELECT status, count(*) FROM action_proposals GROUP BY status"))
    assert statuses.get("cancelled") == 1 and statuses.get("failed", 0) >= 7, statuses
    assert cli_output.count(b"{secret:TOKEN}") > 50 and b"{secret:UNI}" in cli_output
    assert b"cancelled" in cli_output and b"mid-run" in cli_output
    cut_edges = _cut_edges(db)
    assert len(cut_edges) > 40
    assert all(edge.startswith("***") for edge in cut_edges), cut_edges

    # Every form the request used on the wire, as the server saw it.
    wire_token = {m.group(1) for r in seen if (m := re.search(r"[?&]key=(.*?)(?:&u=|$)", r.path))}
    wire_uni = {m.group(1) for r in seen if (m := re.search(r"&u=(.*)$", r.path))}
    assert wire_token and wire_uni and wire_token != {token}
    needles = pieces(
        encodings(token, wire_token)
        | encodings(password)
        | encodings(uni, wire_uni)
        | encodings(basic)
        | {json.dumps(uni)[1:-1]}
    )
    places = {
        **{f"database file {n} (runner running)": b for n, b in while_open.items()},
        **{f"database file {n} (after)": b for n, b in after_close.items()},
        "the CLI's output": cli_output,
        "the runner's log": runner_log,
    }
    leaks = {where: find(blob, needles) for where, blob in places.items()}
    assert all(not found for found in leaks.values()), {w: f for w, f in leaks.items() if f}
