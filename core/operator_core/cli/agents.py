"""``operator mcp``: the Model Context Protocol server for LLM agents (see
``operator_core.agents``). The SDK is imported only when this command runs."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from operator_core.cli.app import Config, app, get_config, run_sync
from operator_core.errors import ConfigError


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT on a loopback address: the server has no authentication of its own, so
    it never listens where another machine could reach it."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"--http wants HOST:PORT (e.g. 127.0.0.1:8765), got {text!r}")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"--http must listen on a loopback address (127.0.0.1, ::1), not {host!r}: "
            "the MCP server has no authentication"
        )
    return host, int(port_text)


@app.command("mcp")
def mcp_server(
    ctx: typer.Context,
    agent: Annotated[
        str, typer.Option("--agent", help="Name recorded as proposer: agent:NAME")
    ] = "mcp",
    http: Annotated[
        str | None,
        typer.Option("--http", help="Serve streamable HTTP on 127.0.0.1:PORT instead of stdio"),
    ] = None,
) -> None:
    """Serve the Model Context Protocol to an LLM agent: list actions, propose, wait for a
    human's decision, read results. No tool approves anything."""
    from operator_core.agents.gateway import check_agent_name

    cfg = get_config(ctx)
    name = check_agent_name(agent)
    listen = parse_listen(http) if http is not None else None

    run_sync(serve(cfg, name, listen))


async def serve(cfg: Config, name: str, listen: tuple[str, int] | None) -> None:
    """Open an executor whose identity is the agent (what the four-eyes rule compares), as
    ``with_executor`` does for the other commands, and serve until the client leaves."""
    from operator_core.actions.executor import ActionExecutor
    from operator_core.actions.registry import ActionRegistry
    from operator_core.agents.gateway import AgentGateway, agent_identity
    from operator_core.agents.server import build_server
    from operator_core.subjects.loader import load_subject

    registry = ActionRegistry.from_subject(load_subject(cfg.subject_spec))
    db = None
    if cfg.target.url is not None:
        from operator_core.db.pg.store import PgActionDB

        db = PgActionDB(cfg.target.url)
    ex = ActionExecutor(
        cfg.db, registry, approval_mode=cfg.approval_mode, identity=agent_identity(name), db=db
    )
    try:
        await ex.open()
        server = build_server(AgentGateway(ex, name))
        if listen is None:
            await server.run_stdio_async()
        else:
            await server.run_streamable_http_async(host=listen[0], port=listen[1])
    finally:
        await ex.close()
        if registry.subject is not None:
            await registry.subject.aclose()
