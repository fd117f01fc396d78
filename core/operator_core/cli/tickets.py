"""``operator ticket``: open tickets and move them through open -> acknowledged -> resolved.

Every change goes through the executor (audited, with the trigger events automations
consume); a refused change is one line on stderr and writes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from operator_core.cli.app import IdArg, get_config, run_sync, ticket_app, with_executor
from operator_core.cli.output import emit, fmt_time, print_table
from operator_core.errors import ValidationError
from operator_core.safe_text import visible

if TYPE_CHECKING:
    # Only for types: pydantic is imported where used (see cli/app.py).
    from operator_core.actions.executor import ActionExecutor
    from operator_core.db.tickets import TicketChange
    from operator_core.model.types import Ticket

_MetaOption = Annotated[
    list[str] | None,
    typer.Option("--meta", help="KEY=VALUE metadata (repeat for more)", show_default=False),
]


def _meta(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"--meta {item!r} must look like KEY=VALUE", "meta")
        if key.strip() in out:
            raise ValidationError(f"--meta {key.strip()} given twice", "meta")
        out[key.strip()] = value
    return out


def ticket_json(t: Ticket) -> dict[str, Any]:
    return t.model_dump(mode="json")


def _print_change(change: TicketChange, done: str, who: str, as_json: bool) -> None:
    t = change.ticket
    if as_json:
        emit(
            {
                "ticket": ticket_json(t),
                "changed": sorted(change.changes),
                "events": change.events,
            }
        )
    elif not change.changes:
        typer.echo(f"ticket {t.id} unchanged")
    else:
        fields = ", ".join(
            _moved(k, a, b)
            for k, (a, b) in sorted(change.changes.items())
            if k not in ("metadata", "summary")
        )
        extra = [k for k in ("summary", "metadata") if k in change.changes]
        text = "; ".join(filter(None, [fields, ", ".join(f"{k} changed" for k in extra)]))
        typer.echo(f"ticket {t.id} {done} by {visible(who)}: {text}")


def _moved(field: str, before: object, after: object) -> str:
    if before is None:
        return f"{field} set to {visible(after)}"
    if after is None:
        return f"{field} {visible(before)} cleared"
    return f"{field} {visible(before)} -> {visible(after)}"


@ticket_app.command("open")
def ticket_open(
    ctx: typer.Context,
    title: Annotated[str, typer.Argument()],
    summary: Annotated[str, typer.Option("--summary")] = "",
    severity: Annotated[
        str, typer.Option("--severity", help="low, medium, high or critical")
    ] = "medium",
    service: Annotated[str | None, typer.Option("--service")] = None,
    team: Annotated[str | None, typer.Option("--team")] = None,
    assignee: Annotated[str | None, typer.Option("--assignee")] = None,
    meta: _MetaOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Open a ticket; prints its id."""
    from operator_core.actions.tickets import (
        check_metadata,
        check_name,
        check_severity,
        check_title,
    )

    cfg = get_config(ctx)
    # Checked before the database is opened (or created); the executor checks them again.
    check_title(title)
    check_severity(severity, "--severity")
    for field, value in (("service", service), ("team", team), ("assignee", assignee)):
        check_name(value or "", field)
    metadata = check_metadata(_meta(meta))

    async def go(ex: ActionExecutor) -> Ticket:
        return await ex.open_ticket(
            title,
            summary,
            severity,
            cfg.actor,
            service=service,
            team=team,
            assignee=assignee,
            metadata=metadata,
        )

    t = run_sync(with_executor(cfg, go, create=True))
    if as_json:
        emit(ticket_json(t))
    else:
        typer.echo(t.id)


_Id = IdArg
_Json = Annotated[bool, typer.Option("--json")]


@ticket_app.command("ack")
def ticket_ack(ctx: typer.Context, ticket_id: _Id, as_json: _Json = False) -> None:
    """Acknowledge an open ticket: someone is on it."""
    cfg = get_config(ctx)
    change = run_sync(with_executor(cfg, lambda ex: ex.acknowledge_ticket(ticket_id, cfg.actor)))
    _print_change(change, "acknowledged", cfg.who, as_json)


@ticket_app.command("resolve")
def ticket_resolve(ctx: typer.Context, ticket_id: _Id, as_json: _Json = False) -> None:
    """Resolve an open or acknowledged ticket."""
    cfg = get_config(ctx)
    change = run_sync(with_executor(cfg, lambda ex: ex.resolve_ticket(ticket_id, cfg.actor)))
    _print_change(change, "resolved", cfg.who, as_json)


@ticket_app.command("escalate")
def ticket_escalate(
    ctx: typer.Context,
    ticket_id: _Id,
    severity: Annotated[
        str | None,
        typer.Option("--severity", help="The new, higher severity (default: one step up)"),
    ] = None,
    as_json: _Json = False,
) -> None:
    """Raise a ticket's severity; a lower or equal one is refused."""
    cfg = get_config(ctx)
    change = run_sync(
        with_executor(cfg, lambda ex: ex.escalate_ticket(ticket_id, cfg.actor, severity))
    )
    _print_change(change, "escalated", cfg.who, as_json)


@ticket_app.command("update")
def ticket_update(
    ctx: typer.Context,
    ticket_id: _Id,
    title: Annotated[str | None, typer.Option("--title")] = None,
    summary: Annotated[str | None, typer.Option("--summary")] = None,
    severity: Annotated[str | None, typer.Option("--severity")] = None,
    service: Annotated[str | None, typer.Option("--service", help="Empty clears it")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Empty clears it")] = None,
    assignee: Annotated[str | None, typer.Option("--assignee", help="Empty clears it")] = None,
    meta: _MetaOption = None,
    unset_meta: Annotated[
        list[str] | None,
        typer.Option("--unset-meta", metavar="KEY", help="Remove a metadata key (repeat)"),
    ] = None,
    as_json: _Json = False,
) -> None:
    """Change a ticket's fields (the status moves with ack and resolve)."""
    cfg = get_config(ctx)
    given = {
        "title": title,
        "summary": summary,
        "severity": severity,
        "service": service,
        "team": team,
        "assignee": assignee,
    }
    fields = {k: v for k, v in given.items() if v is not None}
    metadata = _meta(meta)
    unset = tuple(unset_meta or ())

    async def go(ex: ActionExecutor) -> TicketChange:
        return await ex.update_ticket(ticket_id, cfg.actor, fields, metadata, unset)

    _print_change(run_sync(with_executor(cfg, go)), "updated", cfg.who, as_json)


@ticket_app.command("list")
def ticket_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="open, acknowledged or resolved")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    as_json: _Json = False,
) -> None:
    """Newest tickets first."""
    from operator_core.actions.tickets import check_status

    cfg = get_config(ctx)
    if status is not None:
        check_status(status)
    rows = run_sync(with_executor(cfg, lambda ex: ex.list_tickets(status, limit), read_only=True))
    if as_json:
        emit([ticket_json(t) for t in rows])
        return
    columns = ("ID", "SEVERITY", "STATUS", "SERVICE", "TEAM", "ASSIGNEE", "OPENED", "TITLE")
    print_table(
        columns,
        [
            (
                str(t.id),
                t.severity,
                t.status,
                t.service or "",
                t.team or "",
                t.assignee or "",
                fmt_time(t.created_at),
                t.title,
            )
            for t in rows
        ],
    )


@ticket_app.command("show")
def ticket_show(ctx: typer.Context, ticket_id: _Id, as_json: _Json = False) -> None:
    """One ticket, its fields and its trigger events."""
    cfg = get_config(ctx)

    async def go(ex: ActionExecutor) -> dict[str, Any]:
        t = await ex.require_ticket(ticket_id)
        events = await ex.ticket_events(ticket_id)
        return {"ticket": ticket_json(t), "events": [e.to_json() for e in events]}

    data = run_sync(with_executor(cfg, go, read_only=True))
    if as_json:
        emit(data)
        return
    t = data["ticket"]
    typer.echo(f"ticket {t['id']}: {visible(t['title'])}")
    for key in ("severity", "status", "service", "team", "assignee", "summary"):
        if t.get(key) not in (None, ""):
            typer.echo(f"  {key}: {visible(t[key])}")
    for key, value in sorted(t["metadata"].items()):
        typer.echo(f"  metadata.{visible(key)}: {visible(value)}")
    for key in ("created_at", "acknowledged_at", "resolved_at", "updated_at"):
        if t.get(key):
            typer.echo(f"  {key}: {fmt_time(t[key])}")
    typer.echo("events:")
    for e in data["events"]:
        move = f" {e['from_status']} -> {e['to_status']}" if e["from_status"] else ""
        state = "consumed" if e["consumed_at"] else "pending"
        typer.echo(
            f"  #{e['id']} {e['event_type']}{move}  {fmt_time(e['created_at'])}  "
            f"by {visible(e['actor'])}  ({state})"
        )
