"""The documented example runbook (docs/runbooks.md, examples/runbook.toml) and the
README's short one work as written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from operator_core.errors import ValidationError
from operator_core.model.types import ActionStatus
from operator_core.subjects.loader import load_subject

from .conftest import HttpServer
from .helpers import engine, run_until_settled

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "runbook.toml"
DOC = ROOT / "docs" / "runbooks.md"
README = ROOT / "README.md"


def test_the_documented_example_is_the_example_file() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, "docs/runbooks.md has no toml example"
    assert blocks[0] == EXAMPLE.read_text()


def test_the_readmes_short_example_loads(tmp_path: Path) -> None:
    [block] = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)[:1]
    path = tmp_path / "short.toml"
    path.write_text(block)
    subject = load_subject(f"commands:{path}")
    names = [d.name for d in subject.action_definitions()]
    assert names == ["disk_usage", "restart_service", "notify_chat"]


async def test_example_actions_run_through_the_engine(
    tmp_path: Path, http_server: HttpServer, monkeypatch
) -> None:
    monkeypatch.setenv("OPERATOR_SECRET_CHAT_WEBHOOK_URL", f"{http_server.url}/ok")
    monkeypatch.chdir(ROOT)
    subject = load_subject("commands:examples/runbook.toml")  # as in the docs
    async with engine(tmp_path / "ops.db", subject) as ex:
        ticket = await ex.open_ticket("Disk full", "/var at 99%", severity="high")
        disk = await ex.propose_action("disk_usage", {}, reason="check space", ticket_id=ticket.id)
        up = await ex.propose_action("uptime", {}, reason="load?")
        chat = await ex.propose_action(
            "notify_chat",
            {"message": "cleaning up /var/tmp"},
            reason="tell the team",
            ticket_id=ticket.id,
        )
        restart = await ex.propose_action(
            "restart_service", {"unit": "nginx.service"}, reason="stuck workers"
        )
        for p in (disk, up, chat):
            assert p.id is not None
            done = await run_until_settled(ex, p.id)
            assert done.status == ActionStatus.COMPLETED, done.last_error
        [disk_record] = await ex.db.list_records(disk.id)
        assert restart.id is not None
        waiting = await ex.db.get_proposal(restart.id)
        with pytest.raises(ValidationError, match="file"):
            await ex.propose_action("tail_log", {"file": "/etc/shadow"}, reason="peek")
    assert disk_record.result_data is not None
    assert disk_record.result_data["exit_code"] == 0
    assert "Filesystem" in disk_record.result_data["stdout_tail"]
    [seen] = http_server.requests
    assert json.loads(seen.body) == {"text": "[high] Disk full: cleaning up /var/tmp"}
    assert waiting is not None and waiting.awaiting_approval  # requires_approval = true


def test_example_previews_show_what_approvers_approve() -> None:
    subject = load_subject(f"http:{EXAMPLE}")
    restart = subject.preview("restart_service", {"unit": "nginx.service"})
    assert restart is not None
    assert restart.splitlines()[0] == "sudo -n systemctl restart nginx.service"
    incident = subject.preview("open_incident", {"service": "checkout", "page": "true"})
    assert incident is not None
    assert incident.splitlines()[0] == (
        "POST https://incidents.example.com/api/v1/services/checkout/incidents"
    )
    assert "Authorization: Bearer {secret:INCIDENT_TOKEN}" in incident
    assert '"page_oncall": true' in incident
