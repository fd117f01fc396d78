"""How ``actions show`` prints one action for a person: its fields, parameters as
``key=value``, what will run, each attempt with its exit code or HTTP status and the tails of
its output, and its audit events; every section indented alike.

Every value is escaped onto its own line (``visible``): a parameter with a newline cannot
forge a "will run:" or "reason:" line of what the approver reads.
"""

from __future__ import annotations

from typing import Any

import typer

from operator_core.cli.output import fmt_time, json_line, param_text
from operator_core.safe_text import visible

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


def print_action(data: dict[str, Any]) -> None:
    a = data["action"]
    typer.echo(f"action {a['id']}: {visible(a['action_name'])}  [{visible(data['state'])}]")
    for key in FIELDS:
        if a.get(key) not in (None, "", {}):
            value = fmt_time(a[key]) if key.endswith("_at") else visible(a[key])
            typer.echo(f"  {key}: {value}")
    for key, who in data["identities"].items():
        if who:
            typer.echo(f"  {key}: {visible(who)}")
    if data["ticket"]:
        typer.echo(f"  ticket: #{data['ticket']['id']} {visible(data['ticket']['title'])}")
    if data.get("automation"):
        o = data["automation"]
        typer.echo(
            f"  automation: {visible(o['automation'])} v{o['version']}, node "
            f"{visible(o['node'] or '-')}, execution {o['execution_id']}"
        )
    if a["parameters"]:
        typer.echo("  parameters:")
        for name, value in a["parameters"].items():
            typer.echo(f"{ITEM}{visible(name)}={visible(param_text(value))}")
    if data["preview"]:
        # A preview has lines of its own (cwd, headers, body): they are marked as its own.
        first, *more = str(data["preview"]).split("\n")
        typer.echo(f"  will run: {visible(first)}")
        for line in more:
            typer.echo(f"          | {visible(line)}")
    if data.get("budget"):
        wait = f" ({data['budget_wait']})" if data.get("budget_wait") else ""
        typer.echo(f"  execution budget: {data['budget']}{wait}")
    _print_approval(data.get("approval") or {})
    typer.echo("  records:" if data["records"] else "  records: none")
    for r in data["records"]:
        _print_record(r)
    typer.echo("  audit:" if data["audit"] else "  audit: none")
    for e in data["audit"]:
        typer.echo(
            f"{ITEM}{fmt_time(e['timestamp'])} {visible(e['event_type'])} "
            f"by {visible(e['actor'])} {json_line(e['event_data'])}"
        )


def _print_approval(approval: dict[str, Any]) -> None:
    """The fingerprint the approval is bound to, whether it still matches, and why the last
    approval was voided (what the next approver needs to know)."""
    if approval.get("voided"):
        typer.echo(f"  approval voided: {visible(approval['voided'])}")
    if not approval.get("sha256"):
        return
    if approval["matches"] is None:
        state = "not checked here (no subject loaded)"
    elif approval["matches"]:
        state = "still matches"
    else:
        state = f"NO LONGER MATCHES: {approval['differs']}"
    typer.echo(f"  approval fingerprint: {approval['sha256'][:12]} ({visible(state)})")
    if approval.get("runs"):
        first, *more = str(approval["runs"]).split("\n")
        typer.echo(f"  approved to run: {visible(first)}")
        for line in more:
            typer.echo(f"                 | {visible(line)}")


def _print_record(r: dict[str, Any]) -> None:
    outcome = {True: "ok", False: "failed", None: "running"}[r["success"]]
    result = r["result_data"] or {}
    if result.get("not_run"):
        outcome = "not run"
    took = result.get("duration_seconds")
    duration = f" ({took:g}s)" if isinstance(took, int | float) else ""
    typer.echo(
        f"{ITEM}attempt {r['attempt']}: {outcome}  {fmt_time(r['started_at'])} -> "
        f"{fmt_time(r['completed_at'])}{duration}"
    )
    more = ITEM + "  "
    if r["error_message"]:
        typer.echo(f"{more}error: {visible(r['error_message'])}")
    shown = {"kind", "duration_seconds", "not_run"}
    if "exit_code" in result:
        typer.echo(f"{more}exit code: {visible(result['exit_code'])}")
        shown |= {"exit_code", "argv", "stdout_bytes", "stderr_bytes"}
    if "status" in result and result.get("kind") == "http":
        typer.echo(f"{more}HTTP status: {visible(result['status'])}")
        shown |= {"status", "method", "url", "body_truncated"}
    for key, label in (("stdout_tail", "stdout"), ("stderr_tail", "stderr"), ("body", "body")):
        if key in result:
            shown.add(key)
            _print_tail(more, label, result[key])
    rest = {k: v for k, v in result.items() if k not in shown}
    if rest:
        typer.echo(
            f"{more}result: "
            + " ".join(f"{visible(k)}={visible(param_text(v))}" for k, v in rest.items())
        )


def _print_tail(indent: str, label: str, text: object) -> None:
    """The last TAIL_LINES lines of an output, each marked as the output's own."""
    lines = str(text if text is not None else "").rstrip("\n").split("\n")
    if lines == [""]:
        typer.echo(f"{indent}{label}: (empty)")
        return
    lines = lines[-TAIL_LINES:]
    pad = " " * (len(label) + 2)
    typer.echo(f"{indent}{label}: | {visible(lines[0])}")
    for line in lines[1:]:
        typer.echo(f"{indent}{pad}| {visible(line)}")
