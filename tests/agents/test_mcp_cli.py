"""``operator mcp`` as a command: bad options get one line and start nothing, and the
other commands never import the MCP SDK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.agents.conftest import agent_env
from tests.e2e.conftest import assert_one_line_error, run_cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--http", "0.0.0.0:8765"], "loopback"),
        (["--http", "10.1.2.3:80"], "loopback"),
        (["--http", "127.0.0.1"], "HOST:PORT"),
        (["--http", "127.0.0.1:70000"], "HOST:PORT"),
        (["--agent", "root@host"], "agent name"),
        (["--agent", "a:b"], "agent name"),
        (["--agent", ""], "agent name"),
    ],
)
def test_bad_options_get_one_line_and_create_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    db = tmp_path / "none.db"
    result = run_cli(db, "mcp", *args, env=agent_env(tmp_path))
    assert_one_line_error(result)
    assert message in result.stderr
    assert not db.exists()


def test_other_commands_do_not_import_the_mcp_sdk(tmp_path: Path) -> None:
    code = (
        "import sys; from operator_core.cli.typer_main import main; "
        "main(['--help']); print('mcp' in sys.modules, file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=agent_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stderr.strip().endswith("False"), result.stderr
    assert " mcp " in result.stdout
