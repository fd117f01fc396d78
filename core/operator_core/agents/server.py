"""The MCP server: the gateway's operations as tools and resources of the official SDK
(``mcp`` 2.x, ``MCPServer``), on stdio or streamable HTTP.

There is deliberately no tool that approves, rejects, cancels, resumes or changes the
safety mode. An expected error (bad parameters, unknown id, execution off) comes back as a
tool error with its one-line message; the server keeps serving.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations
from pydantic import Field

from operator_core.agents import catalog
from operator_core.agents.gateway import MAX_WAIT_SECONDS, AgentGateway
from operator_core.errors import OperatorError
from operator_core.safe_text import visible

T = TypeVar("T")

INSTRUCTIONS = """Operator runs remediation actions against production with a human in the
loop. You can propose actions; you cannot approve them. Call list_actions first, propose
with propose_action (or propose_workflow for an ordered chain), then wait_for_decision
until a human approves or rejects, then get_result. Every answer carries kill_switch:
when kill_switch.engaged is true nothing runs; do not retry, tell the user."""

Id = Annotated[int, Field(ge=1, le=2**63 - 1, description="An action id from propose_action")]
TicketId = Annotated[
    int | None, Field(default=None, ge=1, le=2**63 - 1, description="Ticket the proposal answers")
]
Seconds = Annotated[float | None, Field(default=None, ge=0, le=31 * 86400)]

READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True)
PROPOSES = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False)


async def _kill_switch_note(gateway: AgentGateway) -> str:
    try:
        engaged = (await gateway.safety())["engaged"]
    except OperatorError:  # the database itself failed: the error says so already
        return ""
    return " [kill switch engaged: nothing runs]" if engaged else " [kill switch: off]"


def build_server(gateway: AgentGateway) -> MCPServer[Any]:
    """An MCPServer whose tools and resources call ``gateway``."""

    def tool_errors(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        """Operator's expected errors become tool errors with their one-line message and,
        as every answer, the kill switch's state."""

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> T:
            try:
                return await fn(*args, **kwargs)
            except OperatorError as exc:
                note = await _kill_switch_note(gateway)
                raise ToolError(f"{type(exc).__name__}: {visible(exc)}{note}") from None

        return wrapper

    registry = gateway.ex.registry
    names = registry.list_action_names()

    async def propose_action(
        action: Annotated[str, Field(description="Action name from list_actions")],
        parameters: Annotated[dict[str, Any], Field(description="The action's parameters")],
        reason: Annotated[str, Field(description="Why, for the human who approves it")],
        ticket_id: TicketId = None,
        schedule_in_seconds: Seconds = None,
        expires_in_seconds: Seconds = None,
    ) -> dict[str, Any]:
        """Propose one action. It is validated at once (a bad parameter comes back as an
        error naming it: correct it and call again), stored, and waits for a human's
        approval if it needs one. Returns the proposal (its id), the exact command or
        request it will run (will_run) and the next step. Proposing never runs anything."""
        return await gateway.propose_action(
            action, parameters, reason, ticket_id, schedule_in_seconds, expires_in_seconds
        )

    tool = Tool.from_function(tool_errors(propose_action), annotations=PROPOSES)
    # The advertised schema names the actions and their typed parameters; the engine
    # validates again whatever arrives.
    props = tool.parameters["properties"]
    props["action"]["enum"] = names
    props["parameters"] = catalog.any_parameters_schema(registry)
    server: MCPServer[Any] = MCPServer(
        "operator", instructions=INSTRUCTIONS, log_level="WARNING", tools=[tool]
    )

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def list_actions() -> dict[str, Any]:
        """The actions you can propose: name, description, parameters (type, choices,
        pattern, default), risk, whether a human must approve, and the exact command or
        request it runs (`runs`, parameters shown as <name>)."""
        return await gateway.list_actions()

    @server.tool(annotations=PROPOSES)
    @tool_errors
    async def open_ticket(
        title: Annotated[str, Field(description="The problem, in one line")],
        summary: Annotated[str, Field(description="What you observed")] = "",
        severity: Annotated[str, Field(description="low, medium, high or critical")] = "medium",
        service: Annotated[str | None, Field(description="Affected service")] = None,
        team: Annotated[str | None, Field(description="Owning team")] = None,
    ) -> dict[str, Any]:
        """Open a ticket for the problem your proposals answer; returns it with its id, to
        pass as ticket_id."""
        return await gateway.open_ticket(title, summary, severity, service, team)

    @server.tool(annotations=PROPOSES)
    @tool_errors
    async def propose_workflow(
        name: Annotated[str, Field(description="Short name of the chain")],
        description: Annotated[str, Field(description="What it achieves (the reason)")],
        steps: Annotated[
            list[dict[str, Any]],
            Field(
                description="In order: {action, parameters, delay_seconds?}; each step runs "
                "after the previous one completed (delay_seconds later)"
            ),
        ],
        ticket_id: TicketId = None,
    ) -> dict[str, Any]:
        """Propose an ordered chain of actions, approved once by a human. Every step is
        validated before anything is stored. Returns the workflow id and each step's id."""
        return await gateway.propose_workflow(name, description, steps, ticket_id)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def get_proposal(id: Id) -> dict[str, Any]:
        """A proposal's state: status, whether it awaits approval, the decision so far
        (null while pending), what it will run, and whether its approval still matches
        what would run now (if not, it does not run and waits for a human again)."""
        return await gateway.get_proposal(id)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def wait_for_decision(
        id: Id,
        ctx: Context,
        timeout_seconds: Annotated[
            float, Field(ge=0, description=f"At most {MAX_WAIT_SECONDS:g}; larger is capped")
        ] = MAX_WAIT_SECONDS,
    ) -> dict[str, Any]:
        """Wait until a human decides on a proposal. Returns as soon as it is approved,
        rejected (with the reason), expired, cancelled or done (decision field), or after
        timeout_seconds with decision "pending": then call again. The wait is capped at
        50 seconds to stay under common client tool timeouts; progress notifications are
        sent while waiting."""

        async def progress(done: float, total: float, message: str) -> None:
            await ctx.report_progress(done, total, message)

        return await gateway.wait_for_decision(id, timeout_seconds, progress)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def get_result(id: Id) -> dict[str, Any]:
        """The outcome of a proposal: status, whether it finished and succeeded, and every
        attempt with its exit code or HTTP status and redacted output tails, and whether
        its approval still matches what would run."""
        return await gateway.get_result(id)

    @server.resource(
        "operator://actions",
        name="action-catalog",
        description="The actions this server can propose (as list_actions)",
        mime_type="application/json",
    )
    async def action_catalog() -> str:
        return json.dumps(await gateway.list_actions(), default=str)

    @server.resource(
        "operator://proposals/mine",
        name="my-proposals",
        description="This agent's 20 most recent proposals, newest first",
        mime_type="application/json",
    )
    async def my_proposals() -> str:
        return json.dumps(await gateway.my_proposals(), default=str)

    return server
