"""``actions show`` in text mode (issue 23, item 8): each attempt with its exit code or HTTP
status and the tails of its output, parameters as ``key=value``, sections indented alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.conftest import run_cli


class _Down(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = b"upstream unavailable\nretry later\n"
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def down_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Down)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


RUNBOOK = """
[defaults]
retry = {{ max_retries = 0 }}

[actions.crash]
argv = [
    "sh", "-c", "for i in 1 2 3 4 5 6 7; do echo out$i; done; echo \\"$0\\" >&2; exit 3",
    "{{why}}",
]
[actions.crash.params.why]
type = "string"

[actions.hook]
url = "{url}"
method = "POST"
"""


def test_actions_show_prints_exit_codes_statuses_and_output_tails(
    db: Path, tmp_path: Path, down_url: str
) -> None:
    runbook = tmp_path / "runbook.toml"
    runbook.write_text(RUNBOOK.format(url=down_url))
    subject = f"commands:{runbook}"
    made = run_cli(db, "propose", "crash", "-p", "why=disk full", "--reason", "r", subject=subject)
    assert made.returncode == 0, made.stderr
    assert run_cli(db, "propose", "hook", "--reason", "r", subject=subject).returncode == 0
    ran = run_cli(db, "run", "--until-idle", subject=subject)
    assert ran.returncode == 3, ran.stderr

    crash = run_cli(db, "actions", "show", "1", subject=subject).stdout.splitlines()
    assert crash[0] == "action 1: crash  [failed]"
    assert all(line.startswith("  ") for line in crash[1:]), crash
    assert "  parameters:" in crash and "    why=disk full" in crash
    attempt = crash.index("  records:") + 1
    assert crash[attempt].startswith("    attempt 1: failed  2")
    assert crash[attempt + 1 :][:8] == [
        "      error: command failed with exit code 3: disk full",
        "      exit code: 3",
        "      stdout: | out3",
        "              | out4",
        "              | out5",
        "              | out6",
        "              | out7",
        "      stderr: | disk full",
    ]
    assert "  audit:" in crash and not any("{'" in line for line in crash)

    hook = run_cli(db, "actions", "show", "2", subject=subject).stdout.splitlines()
    assert "      HTTP status: 503" in hook
    body = hook.index("      body: | upstream unavailable")
    assert hook[body + 1] == "            | retry later"
