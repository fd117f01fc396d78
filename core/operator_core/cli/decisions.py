"""Approve, reject, cancel; the kill switch and resume."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from operator_core.cli.app import IdArg, app, get_config, run_sync, with_executor
from operator_core.cli.output import emit, fmt_time
from operator_core.errors import ValidationError
from operator_core.model.states import ActionStatus
from operator_core.safe_text import visible

if TYPE_CHECKING:
    # Only for types: pydantic is imported where used (see cli/app.py).
    from operator_core.actions.executor import ActionExecutor, Decision, TargetKind
    from operator_core.model.types import ActionProposal, KillSwitchResult, WorkflowProposal


def _decide(
    ctx: typer.Context, what: Decision, target: int, workflow: bool, reason: str = ""
) -> None:
    cfg = get_config(ctx)
    kind: TargetKind = "workflow" if workflow else "action"

    async def go(ex: ActionExecutor) -> ActionProposal | WorkflowProposal:
        return await ex.decide(what, kind, target, cfg.actor, reason or None)

    approving = what == "approve"
    # An approval is bound to what the subject would run: it must be loaded to render it.
    result = run_sync(with_executor(cfg, go, with_subject=approving, seed_policy=approving))
    done = {"approve": "approved", "reject": "rejected", "cancel": "cancelled"}[what]
    if what == "cancel" and not workflow and result.status == ActionStatus.EXECUTING:
        typer.echo(f"{kind} {target}: stop requested; its runner cancels it within a second")
    else:
        typer.echo(f"{kind} {target} {done} by {visible(cfg.who)}")


@app.command()
def approve(
    ctx: typer.Context,
    target: IdArg,
    workflow: Annotated[bool, typer.Option("--workflow", help="ID is a workflow")] = False,
) -> None:
    """Approve an action (or, with --workflow, a whole workflow)."""
    _decide(ctx, "approve", target, workflow)


@app.command()
def reject(
    ctx: typer.Context,
    target: IdArg,
    reason: Annotated[str, typer.Option("--reason", help="Why (required)")] = "",
    workflow: Annotated[bool, typer.Option("--workflow", help="ID is a workflow")] = False,
) -> None:
    """Reject an action or workflow; it is cancelled and never runs."""
    _decide(ctx, "reject", target, workflow, reason)


@app.command()
def cancel(
    ctx: typer.Context,
    target: IdArg,
    reason: Annotated[str, typer.Option("--reason")] = "",
    workflow: Annotated[bool, typer.Option("--workflow", help="ID is a workflow")] = False,
) -> None:
    """Cancel a pending, scheduled, retry-waiting or running action (or a workflow)."""
    _decide(ctx, "cancel", target, workflow, reason)


@app.command("kill-switch")
def kill_switch(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Stop everything: OBSERVE mode, cancel all pending and running work (at once, even
    while another process holds the database's write lock)."""
    cfg = get_config(ctx)
    if not yes:
        raise ValidationError(
            "the kill switch cancels all pending and running work: add --yes to pull it", "yes"
        )

    async def go() -> KillSwitchResult:
        # Not opened first: the kill file works even when the database cannot be opened.
        executor = cfg.executor()
        try:
            return await executor.kill_switch(cfg.actor)
        finally:
            await executor.close()

    result = run_sync(go())
    if as_json:
        emit(result.model_dump(mode="json"))
        return
    # No kill file: PostgreSQL's row is the switch (recorded, or set and not yet recorded).
    if result.kill_file is None and (result.database_error is None or not result.recorded):
        typer.echo(
            f"KILL SWITCH engaged at {fmt_time(result.engaged_at)} (the database's safety "
            "state, which every host's runners read): they start nothing new and stop what "
            "is executing within their poll interval"
        )
    elif result.kill_file is None:
        typer.echo(
            f"operator: warning: {result.database_error}; the database alone holds the switch",
            err=True,
        )
    else:
        typer.echo(
            f"KILL SWITCH engaged at {fmt_time(result.engaged_at)} ({result.kill_file}):"
            " runners start nothing new and stop what is executing within a second"
        )
    if result.recorded:
        typer.echo(
            f"database: safety mode OBSERVE; cancelled {len(result.cancelled_actions)} "
            f"action(s) and {len(result.cancelled_workflows)} workflow(s); "
            f"{len(result.executing_signalled)} running action(s) told to stop"
        )
    else:
        typer.echo(
            f"database busy ({result.database_error}): it records OBSERVE and cancels "
            "all pending work as soon as its lock frees (the first runner or command "
            "that can write does it); execution is off meanwhile"
        )


@app.command()
def resume(
    ctx: typer.Context, yes: Annotated[bool, typer.Option("--yes", help="Confirm")] = False
) -> None:
    """Allow execution again (revives nothing that was cancelled)."""
    cfg = get_config(ctx)
    if not yes:
        raise ValidationError("resume turns execution back on: add --yes to confirm", "yes")
    changed = run_sync(with_executor(cfg, lambda ex: ex.resume(cfg.actor), seed_policy=True))
    typer.echo("safety mode EXECUTE" + ("" if changed else " (it already was)"))
