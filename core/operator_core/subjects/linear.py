"""Runbook ``linear`` actions: create a Linear issue through its GraphQL API.

One ``issueCreate`` mutation sent by the webhook machinery (same auth, retries, redaction
and records); the record gains the issue's identifier (``ENG-123``). GraphQL reports
errors inside a 200 answer: those fail the attempt, like an HTTP error would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from operator_core.errors import ActionFailed
from operator_core.subjects.runbook_fields import FieldCtx, kind_of
from operator_core.subjects.templates import Template
from operator_core.subjects.webhooks import AuthSpec, HttpSpec

KEYS = {"url", "api_key", "team_id", "title", "description", "priority", "label_ids"}
API_URL = "https://api.linear.app/graphql"
PRIORITIES = range(5)  # 0 none, 1 urgent, 2 high, 3 medium, 4 low
MUTATION = (
    "mutation IssueCreate($input: IssueCreateInput!) "
    "{ issueCreate(input: $input) { success issue { id identifier url } } }"
)
_DETAIL = 500


def _literal(text: str) -> Template:
    return Template(text, (text,))


def parse(
    ctx: FieldCtx,
    raw: Any,
    params: Mapping[str, Any],
    auth: AuthSpec | None,
    timeout: float,
) -> HttpSpec:
    block = ctx.table(raw, "linear")
    ctx.keys(block, KEYS, "linear")
    names = list(params)
    for key in ("team_id", "title"):
        if key not in block:
            raise ctx.error(f"linear.{key}", f"a Linear issue needs {key}")
    auth = _auth(ctx, block, auth)
    issue: dict[str, Any] = {
        "teamId": ctx.text(block["team_id"], "linear.team_id", names),
        "title": ctx.text(block["title"], "linear.title", names),
        "description": ctx.text(block.get("description", ""), "linear.description", names),
    }
    if "priority" in block:
        issue["priority"] = _priority(ctx, block["priority"], params)
    if "label_ids" in block:
        raw_ids = block["label_ids"]
        if not isinstance(raw_ids, list):
            raise ctx.error(
                "linear.label_ids", f"must be an array of strings, not {kind_of(raw_ids)}"
            )
        issue["labelIds"] = [
            ctx.text(v, f"linear.label_ids[{i}]", names) for i, v in enumerate(raw_ids)
        ]
    return HttpSpec(
        method="POST",
        url=ctx.url(block.get("url", API_URL), "linear.url", names),
        headers={"Accept": _literal("application/json")},
        body={"query": _literal(MUTATION), "variables": {"input": issue}},
        expect=None,
        timeout=timeout,
        auth=auth,
        reply=LinearReply(),
    )


def _auth(ctx: FieldCtx, block: dict[str, Any], auth: AuthSpec | None) -> AuthSpec:
    """A personal API key goes as is in Authorization (no "Bearer"); OAuth tokens through
    the action's ``auth``."""
    if "api_key" in block:
        if auth is not None:
            raise ctx.error("linear.api_key", "give api_key or auth, not both")
        key = ctx.fixed(block["api_key"], "linear.api_key")
        if not key.secrets:
            raise ctx.error(
                "linear.api_key",
                'the API key must come from a secret, e.g. "{secret:LINEAR_API_KEY}", '
                "never from the file itself",
            )
        return AuthSpec(type="custom", header="Authorization", value=key)
    if auth is None or auth.type == "none":
        raise ctx.error(
            "linear.api_key",
            'a Linear action needs api_key = "{secret:LINEAR_API_KEY}" (or auth: bearer or oauth2)',
        )
    return auth


def _priority(ctx: FieldCtx, raw: Any, params: Mapping[str, Any]) -> Any:
    """0 to 4, in the file or as one integer parameter whose choices all lie in 0 to 4."""
    field = "linear.priority"
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw not in PRIORITIES:
            raise ctx.error(field, f"must be 0 to 4 (0 none, 1 urgent ... 4 low), not {raw}")
        return raw
    if not isinstance(raw, str):
        raise ctx.error(field, f"must be an integer 0 to 4, not {kind_of(raw)}")
    template = ctx.template(raw, field, list(params))
    ref = template.single_ref
    name = ref.name if ref is not None and ref.kind == "param" else ""
    param = params.get(name)
    if param is None or param.type != "int":
        raise ctx.error(field, 'must be an integer 0 to 4, or "{name}" of an integer parameter')
    if param.choices is None or any(c not in PRIORITIES for c in param.choices):
        raise ctx.error(
            field, f"parameter '{name}' needs choices within 0 to 4 to be a Linear priority"
        )
    return template


def _json(record: dict[str, Any]) -> Any:
    try:
        return json.loads(record.get("body") or "")
    except ValueError:
        return None


def _messages(data: Any) -> str | None:
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list) or not errors:
        return None
    texts = []
    for error in errors:
        if isinstance(error, dict):
            ext = error.get("extensions") or {}
            shown = ext.get("userPresentableMessage") if isinstance(ext, dict) else None
            texts.append(str(shown or error.get("message") or error))
        else:
            texts.append(str(error))
    return "; ".join(texts)[:_DETAIL]


@dataclass(frozen=True)
class LinearReply:
    def shape(self, body: Any) -> Any:
        issue = dict(body["variables"]["input"])
        if "labelIds" in issue:
            issue["labelIds"] = [i for i in issue["labelIds"] if i]
            if not issue["labelIds"]:
                del issue["labelIds"]
        return {**body, "variables": {"input": issue}}

    def done(self, record: dict[str, Any]) -> dict[str, Any]:
        data = _json(record)
        errors = _messages(data)
        if errors is not None:
            raise ActionFailed(
                f"Linear refused the issue: {errors}", retryable=False, result_data=record
            )
        created = (data.get("data") or {}).get("issueCreate") if isinstance(data, dict) else None
        issue = created.get("issue") if isinstance(created, dict) else None
        if not isinstance(created, dict) or created.get("success") is not True or not issue:
            raise ActionFailed(
                "Linear answered without a created issue (issueCreate.success is not true)",
                retryable=False,
                result_data=record,
            )
        return {
            **record,
            "kind": "linear",
            "identifier": str(issue.get("identifier", "")),
            "issue_id": str(issue.get("id", "")),
            "issue_url": str(issue.get("url", "")),
        }

    def explain(self, record: dict[str, Any]) -> str | None:
        return _messages(_json(record))
