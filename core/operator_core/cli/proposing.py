"""``operator propose`` and ``propose-workflow``."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Annotated

import typer

from operator_core.actions.limits import MAX_RETRIES
from operator_core.cli.app import TicketOption, app, get_config, run_sync, with_executor
from operator_core.cli.output import emit, proposal_json
from operator_core.cli.parsing import check_label, check_text, parse_duration, parse_params
from operator_core.cli.subject_facts import keep
from operator_core.errors import ValidationError

if TYPE_CHECKING:
    # Only for types: pydantic is imported where used (see cli/app.py).
    from operator_core.actions.executor import ActionExecutor
    from operator_core.model.types import ActionProposal, WorkflowProposal


@app.command()
def propose(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(help="Action name")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="KEY=VALUE")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (required)")] = "",
    ticket: TicketOption = None,
    schedule_in: Annotated[
        str | None, typer.Option("--schedule-in", help="Run after DURATION (e.g. 5m)")
    ] = None,
    max_retries: Annotated[int | None, typer.Option("--max-retries", max=MAX_RETRIES)] = None,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Cancel if unapproved after DURATION")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Propose an action; prints the new id."""
    cfg = get_config(ctx)
    check_text(reason, "the reason", "reason")
    params = parse_params(param or [])
    delay = parse_duration(schedule_in, "--schedule-in") if schedule_in is not None else None
    expiry = parse_duration(expires_in, "--expires-in") if expires_in is not None else None

    async def go(ex: ActionExecutor) -> ActionProposal:
        p = await ex.propose_action(
            action,
            params,
            reason,
            ticket_id=ticket,
            proposed_by=cfg.actor,
            schedule_in=delay,
            max_retries=max_retries,
            expires_in=expiry,
        )
        keep(cfg, ex.registry, [(p.action_name, p.parameters)])  # for ``actions show``
        return p

    p = run_sync(with_executor(cfg, go, with_subject=True, create=True, seed_policy=True))
    if as_json:
        emit(proposal_json(p))
    else:
        typer.echo(p.id)


@app.command("propose-workflow")
def propose_workflow(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Workflow name")],
    step: Annotated[
        list[str],
        typer.Option(
            "--step",
            help="'ACTION KEY=VALUE ...' (repeat, in order);"
            " 'delay=DURATION' waits after the previous step",
        ),
    ],
    description: Annotated[
        str, typer.Option("--description", help="What it achieves (required: every step's reason)")
    ] = "",
    ticket: TicketOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Propose an ordered chain of actions, approved once; prints the workflow id."""
    cfg = get_config(ctx)
    name = check_label(name, "the workflow name", "name")
    if not description.strip():
        raise ValidationError(
            "a workflow needs a description (--description): it is every step's reason",
            "description",
        )
    check_text(description, "the description", "description")
    recs = []
    for i, text in enumerate(step, start=1):
        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise ValidationError(f"step {i}: {exc}", "step") from exc
        if not words:
            raise ValidationError(f"step {i} is empty", "step")
        params = parse_params(words[1:])
        if i == 1 and "delay" in params:
            raise ValidationError(
                "step 1: delay= waits after the previous step, and the first step has none",
                "delay",
            )
        delay = (
            parse_duration(str(params.pop("delay")), f"step {i} delay")
            if "delay" in params
            else 0.0
        )
        recs.append(
            {
                "action_name": words[0],
                "parameters": params,
                "delay_seconds": delay,
                "reason": description,
            }
        )

    async def go(ex: ActionExecutor) -> tuple[WorkflowProposal, list[ActionProposal]]:
        wf_id = await ex.propose_workflow(name, description, recs, ticket, proposed_by=cfg.actor)
        steps = await ex.db.list_workflow_actions(wf_id)
        keep(cfg, ex.registry, [(s.action_name, s.parameters) for s in steps])
        return await ex.require_workflow(wf_id), steps

    wf, steps = run_sync(with_executor(cfg, go, with_subject=True, create=True, seed_policy=True))
    if as_json:
        # The workflow as 'workflows show --json' has it, as 'propose --json' gives the action.
        emit({**wf.model_dump(mode="json"), "steps": [proposal_json(s) for s in steps]})
    else:
        typer.echo(wf.id)
