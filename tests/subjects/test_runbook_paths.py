"""Path parameters: normalised, absolute, confined to a directory, and checked again with
symbolic links followed just before the command runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from operator_core.actions.registry import (
    ActionDefinition,
    ParamDef,
    confine_paths,
    validate_action_params,
)
from operator_core.errors import ActionFailed, ConfigError, ValidationError
from operator_core.model.types import ActionStatus
from operator_core.subjects.base import BaseSubject, ExecutionContext
from operator_core.subjects.loader import load_subject

from .conftest import Runbooks
from .helpers import engine, run_until_settled

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "runbook.toml"

TRAVERSALS = [
    "/var/log/../../etc/passwd",
    "/var/log/x/../../../root/.ssh/id_rsa",
    "/var/log/./../log2/secret",
    "/var/log/..",
    "/var/logs/x",
    "/var/log\x00/../etc/passwd",
    "/var/log/a\nb",
    "var/log/syslog",
    "../log/syslog",
    "",
]


@pytest.mark.parametrize("value", TRAVERSALS)
async def test_the_readme_tail_log_refuses_traversal(value: str, tmp_path: Path) -> None:
    """Both paths of the issue ran through the README's old regex."""
    subject = load_subject(f"commands:{EXAMPLE}")
    async with engine(tmp_path / "ops.db", subject) as ex:
        with pytest.raises(ValidationError, match="file") as info:
            await ex.propose_action("tail_log", {"file": value}, reason="peek")
        assert await ex.db.list_proposals() == []
    assert "\n" not in str(info.value)


async def test_the_readme_tail_log_stores_and_shows_the_normalised_path(tmp_path: Path) -> None:
    subject = load_subject(f"commands:{EXAMPLE}")
    async with engine(tmp_path / "ops.db", subject) as ex:
        p = await ex.propose_action(
            "tail_log", {"file": "//var/log/./nginx//../syslog"}, reason="look"
        )
    assert p.parameters["file"] == "/var/log/syslog"
    preview = subject.preview("tail_log", p.parameters)
    assert preview is not None and preview.splitlines()[0] == "tail -n 50 /var/log/syslog"


RUNBOOK = """
[actions.show]
argv = [@PY@, @TOOL@, "argv", "{file}"]
timeout = 10
retry = { max_retries = 0 }

[actions.show.params.file]
type = "path"
under = "@LOGS@"
"""


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    (logs / "app").mkdir(parents=True)
    (logs / "app" / "today.log").write_text("fine\n")
    (tmp_path / "secret.txt").write_text("do not read\n")
    (logs / "escape").symlink_to(tmp_path / "secret.txt")
    (logs / "outdir").symlink_to(tmp_path)
    (logs / "current").symlink_to(logs / "app" / "today.log")
    return logs


def _subject(runbooks: Runbooks, logs: Path) -> Any:
    return runbooks.load(RUNBOOK.replace("@LOGS@", str(logs)))


async def test_the_command_gets_the_normalised_path(runbooks: Runbooks, logs: Path) -> None:
    subject = _subject(runbooks, logs)
    given = f"{logs}/app/./old/..//today.log"
    params = validate_action_params(subject.actions["show"].definition, {"file": given})
    result = await runbooks.execute(subject, "show", params)
    assert result is not None
    assert json.loads(result["stdout_tail"]) == [f"{logs}/app/today.log"]


async def test_a_link_inside_the_directory_to_a_file_inside_it_is_fine(
    runbooks: Runbooks, logs: Path
) -> None:
    subject = _subject(runbooks, logs)
    result = await runbooks.execute(subject, "show", {"file": f"{logs}/current"})
    assert result is not None and json.loads(result["stdout_tail"]) == [f"{logs}/current"]


@pytest.mark.parametrize("link", ["escape", "outdir/secret.txt"])
async def test_a_link_that_leads_outside_fails_before_the_command_runs(
    runbooks: Runbooks, logs: Path, tmp_path: Path, link: str
) -> None:
    """Accepted when proposed (the text is under the directory); refused when it runs."""
    subject = _subject(runbooks, logs)
    async with engine(tmp_path / "ops.db", subject) as ex:
        p = await ex.propose_action("show", {"file": f"{logs}/{link}"}, reason="x")
        assert p.id is not None
        done = await run_until_settled(ex, p.id)
        [record] = await ex.db.list_records(p.id)
    assert done.status == ActionStatus.FAILED
    assert "outside" in (done.last_error or "") and str(tmp_path / "secret.txt") in (
        done.last_error or ""
    )
    assert record.result_data is None  # the program never started


async def test_a_link_planted_after_approval_is_caught_at_execution(
    runbooks: Runbooks, logs: Path, tmp_path: Path
) -> None:
    subject = _subject(runbooks, logs)
    target = logs / "app" / "later.log"
    target.write_text("ok\n")
    async with engine(tmp_path / "ops.db", subject) as ex:
        p = await ex.propose_action("show", {"file": str(target)}, reason="x")
        assert p.id is not None
        target.unlink()
        target.symlink_to(tmp_path / "secret.txt")
        done = await run_until_settled(ex, p.id)
    assert done.status == ActionStatus.FAILED and "outside" in (done.last_error or "")


@pytest.mark.parametrize(
    ("spec", "field", "problem"),
    [
        ('type = "path"', "params.file.under", "needs under"),
        ('type = "path"\nunder = "var/log"', "params.file.under", "absolute"),
        ('type = "path"\nunder = 3', "params.file.under", "string"),
        ('type = "string"\nunder = "/var/log"', "params.file.under", "only a path"),
        (
            'type = "path"\nunder = "/var/log"\ndefault = "/etc/passwd"',
            "params.file.default",
            "under",
        ),
        (
            'type = "path"\nunder = "/var/log"\nchoices = ["/var/log/../x"]',
            "params.file.choices",
            "under",
        ),
    ],
)
def test_path_parameters_are_checked_when_the_file_loads(
    runbooks: Runbooks, spec: str, field: str, problem: str
) -> None:
    text = f'[actions.a]\nargv = ["tail", "{{file}}"]\n\n[actions.a.params.file]\n{spec}\n'
    with pytest.raises(ConfigError, match=problem) as info:
        runbooks.load(text)
    assert f"field '{field}'" in str(info.value)


def test_under_is_normalised_and_pattern_applies_to_the_normalised_value() -> None:
    spec = ParamDef(type="path", under="/var//log/", pattern=r"/var/log/[a-z]+\.log")
    assert spec.under == "/var/log"
    d = ActionDefinition(name="t", parameters={"f": spec})
    assert validate_action_params(d, {"f": "/var/log/x/../app.log"}) == {"f": "/var/log/app.log"}
    with pytest.raises(ValidationError, match="pattern"):
        validate_action_params(d, {"f": "/var/log/app.txt"})
    with pytest.raises(ValidationError, match="must be a path"):
        validate_action_params(d, {"f": 7})


class _Files(BaseSubject):
    """A Python subject with a confined path parameter."""

    name = "files"

    def __init__(self, logs: Path) -> None:
        self.logs = logs

    def action_definitions(self) -> list[ActionDefinition]:
        return [
            ActionDefinition(
                name="read",
                parameters={"file": ParamDef(type="path", under=str(self.logs))},
            )
        ]

    async def execute(
        self, action_name: str, parameters: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any]:
        try:
            confine_paths(self.action_definitions()[0], parameters)
        except ValidationError as exc:
            raise ActionFailed(str(exc), retryable=False) from None
        return {"text": Path(parameters["file"]).read_text()}


async def test_python_subjects_get_the_same_checks(logs: Path, tmp_path: Path) -> None:
    subject = _Files(logs)
    async with engine(tmp_path / "ops.db", subject) as ex:
        with pytest.raises(ValidationError, match="must be a path under"):
            await ex.propose_action("read", {"file": f"{logs}/../secret.txt"}, reason="x")
        ok = await ex.propose_action("read", {"file": f"{logs}/app/today.log"}, reason="x")
        bad = await ex.propose_action("read", {"file": f"{logs}/escape"}, reason="x")
        assert ok.id is not None and bad.id is not None
        assert (await run_until_settled(ex, ok.id)).status == ActionStatus.COMPLETED
        failed = await run_until_settled(ex, bad.id)
    assert failed.status == ActionStatus.FAILED and "outside" in (failed.last_error or "")
