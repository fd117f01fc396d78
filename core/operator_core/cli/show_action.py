"""How ``actions show`` prints one action for a person: its fields, parameters as
``key=value``, what will run, each attempt with its exit code or HTTP status and the tails of
its output, and its audit events; every section indented alike.

Every value is escaped onto its own line (``visible``): a parameter with a newline cannot
forge a "will run:" or "reason:" line of what the approver reads.
"""

from __future__ import annotations

from operator_core.cli.formats import fmt_time, json_line, param_text
from operator_core.safe_text import visible

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

FIELDS = (
    "reason",
    "proposed_by",
    "proposed_at",
    "requires_approval",
    "approved_by",
    "approved_at",
    "rejected_by",
    "rejection_reason",
    "workflow_id",
    "scheduled_at",
    "retry_count",
    "max_retries",
    "next_retry_at",
    "last_error",
    "cancel_reason",
    "expires_at",
)
TAIL_LINES = 5
"""Lines of each output tail shown per attempt (``--json`` has all that was kept)."""
ITEM = "    "


def action_text(data: dict[str, Any]) -> str:
    """What ``actions show`` prints (without its last newline): the Typer command and the
    fast path (``fast_show``) print this."""
    out: list[str] = []
    _action(out.append, data)
    return "\n".join(out)


def _action(echo: Callable[[str], None], data: dict[str, Any]) -> None:
    a = data["action"]
    echo(f"action {a['id']}: {visible(a['action_name'])}  [{visible(data['state'])}]")
    for key in FIELDS:
        if a.get(key) not in (None, "", {}):
            value = fmt_time(a[key]) if key.endswith("_at") else visible(a[key])
            echo(f"  {key}: {value}")
    for key, who in data["identities"].items():
        if who:
            echo(f"  {key}: {visible(who)}")
    if data["ticket"]:
        echo(f"  ticket: #{data['ticket']['id']} {visible(data['ticket']['title'])}")
    if data.get("automation"):
        o = data["automation"]
        echo(
            f"  automation: {visible(o['automation'])} v{o['version']}, node "
            f"{visible(o['node'] or '-')}, execution {o['execution_id']}"
        )
    if a["parameters"]:
        echo("  parameters:")
        for name, value in a["parameters"].items():
            echo(f"{ITEM}{visible(name)}={visible(param_text(value))}")
    if data["preview"]:
        # A preview has lines of its own (cwd, headers, body): they are marked as its own.
        first, *more = str(data["preview"]).split("\n")
        echo(f"  will run: {visible(first)}")
        for line in more:
            echo(f"          | {visible(line)}")
    if data.get("budget"):
        wait = f" ({data['budget_wait']})" if data.get("budget_wait") else ""
        echo(f"  execution budget: {data['budget']}{wait}")
    _print_approval(echo, data.get("approval") or {})
    echo("  records:" if data["records"] else "  records: none")
    for r in data["records"]:
        _print_record(echo, r)
    echo("  audit:" if data["audit"] else "  audit: none")
    for e in data["audit"]:
        echo(
            f"{ITEM}{fmt_time(e['timestamp'])} {visible(e['event_type'])} "
            f"by {visible(e['actor'])} {json_line(e['event_data'])}"
        )


def _print_approval(echo: Callable[[str], None], approval: dict[str, Any]) -> None:
    """The fingerprint the approval is bound to, whether it still matches, and why the last
    approval was voided (what the next approver needs to know)."""
    if approval.get("voided"):
        echo(f"  approval voided: {visible(approval['voided'])}")
    if not approval.get("sha256"):
        return
    if approval["matches"] is None:
        state = "not checked here (no subject loaded)"
    elif approval["matches"]:
        state = "still matches"
    else:
        state = f"NO LONGER MATCHES: {approval['differs']}"
    echo(f"  approval fingerprint: {approval['sha256'][:12]} ({visible(state)})")
    if approval.get("runs"):
        first, *more = str(approval["runs"]).split("\n")
        echo(f"  approved to run: {visible(first)}")
        for line in more:
            echo(f"                 | {visible(line)}")


def _print_record(echo: Callable[[str], None], r: dict[str, Any]) -> None:
    outcome = {True: "ok", False: "failed", None: "running"}[r["success"]]
    result = r["result_data"] or {}
    if result.get("not_run"):
        outcome = "not run"
    took = result.get("duration_seconds")
    duration = f" ({took:g}s)" if isinstance(took, int | float) else ""
    echo(
        f"{ITEM}attempt {r['attempt']}: {outcome}  {fmt_time(r['started_at'])} -> "
        f"{fmt_time(r['completed_at'])}{duration}"
    )
    more = ITEM + "  "
    if r["error_message"]:
        echo(f"{more}error: {visible(r['error_message'])}")
    shown = {"kind", "duration_seconds", "not_run"}
    if "exit_code" in result:
        echo(f"{more}exit code: {visible(result['exit_code'])}")
        shown |= {"exit_code", "argv", "stdout_bytes", "stderr_bytes"}
    if "status" in result and result.get("kind") == "http":
        echo(f"{more}HTTP status: {visible(result['status'])}")
        shown |= {"status", "method", "url", "body_truncated"}
    for key, label in (("stdout_tail", "stdout"), ("stderr_tail", "stderr"), ("body", "body")):
        if key in result:
            shown.add(key)
            _print_tail(echo, more, label, result[key])
    rest = {k: v for k, v in result.items() if k not in shown}
    if rest:
        echo(
            f"{more}result: "
            + " ".join(f"{visible(k)}={visible(param_text(v))}" for k, v in rest.items())
        )


def _print_tail(echo: Callable[[str], None], indent: str, label: str, text: object) -> None:
    """The last TAIL_LINES lines of an output, each marked as the output's own."""
    lines = str(text if text is not None else "").rstrip("\n").split("\n")
    if lines == [""]:
        echo(f"{indent}{label}: (empty)")
        return
    lines = lines[-TAIL_LINES:]
    pad = " " * (len(label) + 2)
    echo(f"{indent}{label}: | {visible(lines[0])}")
    for line in lines[1:]:
        echo(f"{indent}{pad}| {visible(line)}")
