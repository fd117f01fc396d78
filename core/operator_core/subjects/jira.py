"""Runbook ``jira`` actions: create a Jira issue through its REST API.

One ``POST {url}/rest/api/{2|3}/issue`` sent by the webhook machinery (same auth, retries,
redaction and records); the record gains the created issue's key. API version 3 wants the
description in the Atlassian Document Format, version 2 as plain text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from operator_core.errors import ActionFailed
from operator_core.subjects.runbook_fields import FieldCtx, kind_of
from operator_core.subjects.templates import Template
from operator_core.subjects.webhooks import AuthSpec, HttpSpec

KEYS = {
    "url",
    "api_version",
    "project_key",
    "issue_type",
    "summary",
    "description",
    "priority",
    "labels",
}
_PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]*")
_DETAIL = 500


def parse(
    ctx: FieldCtx, raw: Any, params: list[str], auth: AuthSpec | None, timeout: float
) -> HttpSpec:
    block = ctx.table(raw, "jira")
    ctx.keys(block, KEYS, "jira")
    for key in ("url", "project_key", "issue_type", "summary"):
        if key not in block:
            raise ctx.error(f"jira.{key}", f"a Jira issue needs {key}")
    version = block.get("api_version", 2)
    if version not in (2, 3) or isinstance(version, bool):
        raise ctx.error("jira.api_version", f"must be 2 or 3, not {version!r}")
    if auth is None or auth.type == "none":
        raise ctx.error(
            "auth",
            "a Jira action needs auth: basic (your Atlassian email and an API token), "
            "bearer (a personal access token) or oauth2",
        )
    project = ctx.text(block["project_key"], "jira.project_key", params)
    if not project.refs and not _PROJECT_KEY.fullmatch(project.source):
        raise ctx.error(
            "jira.project_key",
            f"{project.source!r} is not a Jira project key (capital letters, digits, '_')",
        )
    fields: dict[str, Any] = {
        "project": {"key": project},
        "issuetype": {"name": ctx.text(block["issue_type"], "jira.issue_type", params)},
        "summary": ctx.text(block["summary"], "jira.summary", params),
        "description": ctx.text(block.get("description", ""), "jira.description", params),
    }
    if "priority" in block:
        fields["priority"] = {"name": ctx.text(block["priority"], "jira.priority", params)}
    if "labels" in block:
        fields["labels"] = _labels(ctx, block["labels"], params)
    return HttpSpec(
        method="POST",
        url=_endpoint(ctx.url(block["url"], "jira.url", params), f"/rest/api/{version}/issue"),
        headers={"Accept": Template("application/json", ("application/json",))},
        body={"fields": fields},
        expect=None,
        timeout=timeout,
        auth=auth,
        reply=JiraReply(version),
    )


def _labels(ctx: FieldCtx, raw: Any, params: list[str]) -> list[Template]:
    if not isinstance(raw, list):
        raise ctx.error("jira.labels", f"must be an array of strings, not {kind_of(raw)}")
    labels = [ctx.text(v, f"jira.labels[{i}]", params) for i, v in enumerate(raw)]
    for i, label in enumerate(labels):
        if not label.refs and (not label.source or re.search(r"\s", label.source)):
            raise ctx.error(f"jira.labels[{i}]", "a Jira label is one word without spaces")
    return labels


def _endpoint(base: Template, path: str) -> Template:
    """``base`` (the site, e.g. https://acme.atlassian.net) with the API path after it."""
    parts = list(base.parts)
    if parts and isinstance(parts[-1], str):
        parts[-1] = parts[-1].rstrip("/")
    return Template(base.source.rstrip("/") + path, (*parts, path))


def _adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document: a paragraph per blank-line-separated block,
    a hard break per line break."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        content: list[dict[str, Any]] = []
        for i, line in enumerate(block.split("\n")):
            if i:
                content.append({"type": "hardBreak"})
            if line:
                content.append({"type": "text", "text": line})
        paragraphs.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": paragraphs}


def _json(record: dict[str, Any]) -> Any:
    try:
        return json.loads(record.get("body") or "")
    except ValueError:
        return None


@dataclass(frozen=True)
class JiraReply:
    version: int

    def shape(self, body: Any) -> Any:
        fields = dict(body["fields"])
        if not fields["description"].strip():
            del fields["description"]
        elif self.version == 3:
            fields["description"] = _adf(fields["description"])
        if "priority" in fields and not fields["priority"]["name"]:
            del fields["priority"]  # an optional parameter left empty: the project default
        if "labels" in fields:
            fields["labels"] = [label for label in fields["labels"] if label]
        return {"fields": fields}

    def done(self, record: dict[str, Any]) -> dict[str, Any]:
        data = _json(record)
        key = data.get("key") if isinstance(data, dict) else None
        if not isinstance(key, str) or not key:
            # The issue may exist: retrying could open a second one.
            raise ActionFailed(
                f"Jira answered HTTP {record.get('status')} without an issue key",
                retryable=False,
                result_data=record,
            )
        site = str(record.get("url", "")).split("/rest/api/")[0]
        assert isinstance(data, dict)
        return {
            **record,
            "kind": "jira",
            "issue_key": key,
            "issue_id": str(data.get("id", "")),
            "issue_url": f"{site}/browse/{key}",
        }

    def explain(self, record: dict[str, Any]) -> str | None:
        """Jira's ``errorMessages`` and per-field ``errors``."""
        data = _json(record)
        if not isinstance(data, dict):
            return None
        parts = [str(m) for m in data.get("errorMessages") or [] if m]
        errors = data.get("errors")
        if isinstance(errors, dict):
            parts += [f"{field}: {message}" for field, message in errors.items()]
        return "; ".join(parts)[:_DETAIL] or None
