"""The agent gateway: what LLM agents see of Operator, served over the Model Context
Protocol by ``operator mcp``.

Agents propose; humans approve. Nothing here approves, rejects, resumes or changes the
safety mode: every state change goes through ``ActionExecutor``'s proposing and ticket
methods, recorded as ``agent:NAME``. ``catalog`` describes the actions, ``gateway`` does
the work (no MCP import), ``server`` binds it to the MCP SDK.
"""
