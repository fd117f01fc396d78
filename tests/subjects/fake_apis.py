"""Jira, Linear and an OAuth2 token endpoint on 127.0.0.1, strict like the real ones.

Each route checks what the real API requires (path, method, content type, auth header,
JSON shape) and answers as the real API does, error bodies included. Every check that
fails is also kept in ``problems``, so a test can assert the requests were right even when
the action was meant to fail.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from operator_core.subjects import oauth2

from .conftest import Seen

JIRA_EMAIL = "ops@example.com"
JIRA_PROJECTS = {"OPS"}
JIRA_ISSUE_TYPES = {"Bug", "Task", "Incident"}
JIRA_PRIORITIES = {"Highest", "High", "Medium", "Low", "Lowest"}
JIRA_FIELDS = {"project", "issuetype", "summary", "description", "priority", "labels"}
LINEAR_TEAM = "9cfb482a-81e3-4154-b5b9-2c805e70a02d"
LINEAR_LABELS = {"4d6b5c2a-0000-4000-8000-000000000001", "4d6b5c2a-0000-4000-8000-000000000002"}
LINEAR_INPUT = {"teamId", "title", "description", "priority", "labelIds"}
_TOKEN_ALPHABET = "ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ"


def random_value(prefix: str = "") -> str:
    """A credential no other test's text can contain: a piece of a value resolved as a
    secret is masked in every later log line of the process (pieces of "secret" would
    turn each "{secret:NAME}" placeholder into "{***:NAME}")."""
    return prefix + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(30))


def _token() -> str:
    """An access token: long, random, no hex-only runs, with base64-ish punctuation."""
    part = random_value()
    return f"{part}.-_~+/{part[::-1]}="


@dataclass
class FakeApis:
    url: str
    jira_token: str = field(default_factory=random_value)
    linear_key: str = field(default_factory=lambda: random_value("lin_api_"))
    client_id: str = "operator-client"
    client_secret: str = field(default_factory=random_value)
    client_auth: str = "basic"  # how the token endpoint expects the client credentials
    scope: str | None = None
    audience: str | None = None
    token_ttl: int | None = 3600
    echo_secret_in_token_error: bool = False  # a careless server that repeats what it got
    echo_auth_in_jira_errors: bool = False  # ... or a careless proxy in front of Jira
    reject_tokens: bool = False  # the API refuses every token (a client lacking a grant)
    token_delay: float = 0.0  # seconds the token endpoint takes to answer
    requests: list[Seen] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    valid_tokens: set[str] = field(default_factory=set)
    issued: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # One numbering per tracker, as the real ones have: the order in which the runner
    # happens to open them must not change either's first key.
    _jira_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _linear_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def revoke_all(self) -> None:
        with self.lock:
            self.valid_tokens.clear()


def _problem(state: FakeApis, text: str) -> str:
    state.problems.append(text)
    return text


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, data: Any, content_type: str = "application/json") -> None:
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        state: FakeApis = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, dict(self.headers.items()), body)
        path = self.path.split("?")[0]
        with state.lock:
            state.requests.append(seen)
            state.hits[path] = state.hits.get(path, 0) + 1
        if path == "/oauth/token":
            self._token(state, seen)
        elif path in ("/rest/api/2/issue", "/rest/api/3/issue"):
            self._jira(state, seen, int(path.split("/")[3]))
        elif path == "/graphql":
            self._linear(state, seen)
        elif path == "/api/v1/incidents":  # any API behind OAuth2
            if not self._bearer_ok(state, seen.headers.get("Authorization", "")):
                self._reply(401, {"error": "invalid_token"})
            else:
                self._reply(201, {"id": "inc_1"})
        else:
            self._reply(404, {"errorMessages": [f"no route {path}"]})

    # ------------------------------------------------------------ OAuth2 (RFC 6749 4.4)

    def _token(self, state: FakeApis, seen: Seen) -> None:
        time.sleep(state.token_delay)
        if seen.method != "POST":
            _problem(state, f"token request with {seen.method}")
            self._reply(405, {"error": "invalid_request"})
            return
        if not seen.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            _problem(state, f"token request content type {seen.headers.get('Content-Type')}")
            self._reply(400, {"error": "invalid_request"})
            return
        form = dict(urllib.parse.parse_qsl(seen.body.decode()))
        if form.get("grant_type") != "client_credentials":
            _problem(state, f"grant_type {form.get('grant_type')}")
            self._reply(400, {"error": "unsupported_grant_type"})
            return
        if state.client_auth == "basic":
            header = seen.headers.get("Authorization", "")
            expected = base64.b64encode(
                (
                    urllib.parse.quote_plus(state.client_id)
                    + ":"
                    + urllib.parse.quote_plus(state.client_secret)
                ).encode()
            ).decode()
            ok = header == f"Basic {expected}" and "client_secret" not in form
            got = header
        else:
            ok = (
                form.get("client_id") == state.client_id
                and form.get("client_secret") == state.client_secret
                and "Authorization" not in seen.headers
            )
            got = form.get("client_secret", "")
        if not ok:
            description = "Client authentication failed"
            if state.echo_secret_in_token_error:
                description += f" for {seen.headers.get('Authorization') or got!r}"
            self._reply(401, {"error": "invalid_client", "error_description": description})
            return
        for key in ("scope", "audience"):
            if form.get(key) != getattr(state, key):
                _problem(state, f"{key} {form.get(key)!r}")
                self._reply(400, {"error": "invalid_scope" if key == "scope" else "access_denied"})
                return
        token = _token()
        with state.lock:
            state.valid_tokens.add(token)
            state.issued.append(token)
        answer: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if state.token_ttl is not None:
            answer["expires_in"] = state.token_ttl
        if state.scope:
            answer["scope"] = state.scope
        self._reply(200, answer)

    def _bearer_ok(self, state: FakeApis, header: str) -> bool:
        with state.lock:
            valid = header.startswith("Bearer ") and header[7:] in state.valid_tokens
            return valid and not state.reject_tokens

    def _json_body(self, state: FakeApis, seen: Seen, api: str) -> Any:
        if seen.method != "POST":
            _problem(state, f"{api} request with {seen.method}")
            return None
        if not seen.headers.get("Content-Type", "").startswith("application/json"):
            _problem(state, f"{api} content type {seen.headers.get('Content-Type')}")
            return None
        try:
            return json.loads(seen.body)
        except ValueError:
            _problem(state, f"{api} body is not JSON")
            return None

    # ------------------------------------------------------------ Jira REST v2/v3

    def _jira(self, state: FakeApis, seen: Seen, version: int) -> None:
        header = seen.headers.get("Authorization", "")
        basic = "Basic " + base64.b64encode(f"{JIRA_EMAIL}:{state.jira_token}".encode()).decode()
        if header != basic and not self._bearer_ok(state, header):
            self._reply(
                401,
                {
                    "errorMessages": [
                        "You are not authenticated. Authentication required to perform "
                        "this operation."
                    ],
                    "errors": {},
                },
            )
            return
        if seen.headers.get("Accept") != "application/json":
            _problem(state, f"jira Accept {seen.headers.get('Accept')}")
        data = self._json_body(state, seen, "jira")
        if not isinstance(data, dict) or set(data) != {"fields"}:
            self._reply(400, {"errorMessages": ["Can not deserialize instance"], "errors": {}})
            return
        errors = _jira_errors(state, data["fields"], version)
        if errors:
            said = [f"you sent {header}"] if state.echo_auth_in_jira_errors else []
            self._reply(400, {"errorMessages": said, "errors": errors})
            return
        n = next(state._jira_ids)
        self._reply(
            201,
            {
                "id": str(10000 + n),
                "key": f"OPS-{n}",
                "self": f"{state.url}/rest/api/{version}/issue/{10000 + n}",
            },
        )

    # ------------------------------------------------------------ Linear GraphQL

    def _linear(self, state: FakeApis, seen: Seen) -> None:
        header = seen.headers.get("Authorization", "")
        if header != state.linear_key and not self._bearer_ok(state, header):
            if header.startswith("Bearer ") and header[7:] == state.linear_key:
                _problem(state, "Linear API key sent with 'Bearer'")
            self._reply(
                401 if header.startswith("Bearer ") else 400,
                {
                    "errors": [
                        {
                            "message": "Authentication required, not authenticated",
                            "extensions": {
                                "type": "authentication error",
                                "code": "AUTHENTICATION_ERROR",
                                "userPresentableMessage": "You need to authenticate to "
                                "access this operation.",
                            },
                        }
                    ]
                },
            )
            return
        data = self._json_body(state, seen, "linear")
        query = data.get("query", "") if isinstance(data, dict) else ""
        if "issueCreate(input: $input)" not in query or "IssueCreateInput!" not in query:
            self._reply(400, {"errors": [{"message": "Syntax Error: Unexpected query"}]})
            return
        issue = (data.get("variables") or {}).get("input")
        if not isinstance(issue, dict):
            self._reply(
                400,
                {"errors": [{"message": 'Variable "$input" of required type was not provided.'}]},
            )
            return
        error = _linear_error(state, issue)
        if error is not None:
            status, message, user = error
            body = {"message": message, "path": ["issueCreate"]}
            if user:
                body["extensions"] = {
                    "type": "invalid input",
                    "code": "INVALID_INPUT",
                    "userPresentableMessage": user,
                }
            self._reply(status, {"errors": [body], "data": None})
            return
        n = next(state._linear_ids)
        self._reply(
            200,
            {
                "data": {
                    "issueCreate": {
                        "success": True,
                        "issue": {
                            "id": f"2174add1-f7c8-44e3-bbf3-{n:012d}",
                            "identifier": f"ENG-{n}",
                            "url": f"https://linear.app/acme/issue/ENG-{n}/x",
                        },
                    }
                }
            },
        )


def _jira_errors(state: FakeApis, fields: Any, version: int) -> dict[str, str]:
    if not isinstance(fields, dict):
        return {"fields": "must be an object"}
    errors: dict[str, str] = {}
    for key in set(fields) - JIRA_FIELDS:
        errors[key] = (
            f"Field '{key}' cannot be set. It is not on the appropriate screen, or unknown."
        )
    project = fields.get("project")
    if not isinstance(project, dict) or project.get("key") not in JIRA_PROJECTS:
        errors["project"] = "valid project is required"
    issue_type = fields.get("issuetype")
    if not isinstance(issue_type, dict) or issue_type.get("name") not in JIRA_ISSUE_TYPES:
        errors["issuetype"] = "Specify a valid issue type"
    summary = fields.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors["summary"] = "You must specify a summary of the issue."
    if "description" in fields:
        description = fields["description"]
        if version == 2 and not isinstance(description, str):
            errors["description"] = "Operation value must be a string"
        if version == 3 and not _is_adf(description):
            errors["description"] = (
                "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
            )
    if "priority" in fields:
        priority = fields["priority"]
        if not isinstance(priority, dict) or priority.get("name") not in JIRA_PRIORITIES:
            errors["priority"] = "Specify the Priority (name) in the string format"
    if "labels" in fields:
        labels = fields["labels"]
        bad = [x for x in labels if not isinstance(x, str) or not x or " " in x]
        if not isinstance(labels, list) or bad:
            errors["labels"] = (
                f"The label '{bad[0] if bad else labels}' contains spaces which is invalid."
            )
    return errors


def _is_adf(node: Any) -> bool:
    if not isinstance(node, dict) or node.get("type") != "doc" or node.get("version") != 1:
        return False
    for paragraph in node.get("content", []):
        if paragraph.get("type") != "paragraph":
            return False
        for inline in paragraph.get("content", []):
            if inline.get("type") == "text" and not inline.get("text"):
                return False  # ADF refuses empty text nodes
            if inline.get("type") not in ("text", "hardBreak"):
                return False
    return True


def _invalid(detail: str) -> tuple[int, str, str]:
    """A GraphQL validation error: HTTP 400, no data."""
    return 400, f'Variable "$input" got invalid value; {detail}', ""


def _linear_error(state: FakeApis, issue: dict[str, Any]) -> tuple[int, str, str] | None:
    unknown = sorted(set(issue) - LINEAR_INPUT)
    if unknown:
        return _invalid(f'Field "{unknown[0]}" is not defined by type "IssueCreateInput".')
    for key in ("teamId", "title"):
        if not isinstance(issue.get(key), str):
            return _invalid(f'Field "{key}" of required type "String!" was not provided.')
    priority = issue.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        return _invalid(f"Int cannot represent non-integer value: {priority!r}")
    if "description" in issue and not isinstance(issue["description"], str):
        return _invalid("String cannot represent a non string value")
    # Semantic errors come back with HTTP 200, as GraphQL does.
    if issue["teamId"] != LINEAR_TEAM:
        return 200, "Entity not found: Team", "Could not find referenced Team."
    if priority is not None and not 0 <= priority <= 4:
        return 200, "Argument Validation Error", "priority must not be greater than 4"
    labels = issue.get("labelIds", [])
    if not isinstance(labels, list) or any(x not in LINEAR_LABELS for x in labels):
        return 200, "Entity not found: IssueLabel", "Could not find referenced label."
    return None


@contextlib.contextmanager
def serve() -> Iterator[FakeApis]:
    """The three APIs on one port; the process's OAuth2 token cache starts and ends empty."""
    oauth2.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.block_on_close = False
    state = FakeApis(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        oauth2.clear()
