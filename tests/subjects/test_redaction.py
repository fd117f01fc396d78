"""The redactor hides a secret in every form it takes on the way through a request, a
program or an echoing server, whole or cut, and nothing else."""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import urllib.parse

import httpx
import pytest
from operator_core.redaction import CUT_FRAGMENT, FRAGMENT, REDACTED, Redactor
from operator_core.secrets import SecretResolver, install_log_filter

NASTY = 'a+b/c=d&e f%g"h\\'
SECRET = f"Q{secrets.token_hex(8)}{NASTY}{secrets.token_hex(8)}Z"
PLACEHOLDER = "{secret:S}"


def _httpx_query_form(value: str) -> str:
    """What httpx sends for ``value`` in a query string, read off a real httpx request."""
    request = httpx.Request("GET", "http://h/x?k=" + value)
    return request.url.raw_path.decode().removeprefix("/x?k=")


def _encodings(value: str) -> dict[str, str]:
    raw = value.encode()
    percent = urllib.parse.quote(value, safe="")
    return {
        "plain": value,
        "quote": percent,
        "quote lower hex": re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), percent),
        "quote safe=/": urllib.parse.quote(value),
        "quote_plus": urllib.parse.quote_plus(value),
        "httpx query": _httpx_query_form(value),
        "json": json.dumps(value)[1:-1],
        "json twice": json.dumps(json.dumps(value)[1:-1])[1:-1],
        "json of percent": json.dumps(_httpx_query_form(value))[1:-1],
        "html": html.escape(value),
        "python repr": repr(value)[1:-1],
        "base64": base64.b64encode(raw).decode(),
        "base64 urlsafe": base64.urlsafe_b64encode(raw).decode(),
        "base64 unpadded": base64.b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
    }


@pytest.mark.parametrize("form", sorted(_encodings(SECRET)))
def test_every_encoding_is_hidden_whole(form: str) -> None:
    encoded = _encodings(SECRET)[form]
    out = Redactor({"S": SECRET}).redact(f"<{encoded}>")
    assert out == f"<{PLACEHOLDER}>", (form, encoded, out)


@pytest.mark.parametrize("user", ["", "o", "op", "ops", "admin", "svc-account"])
def test_base64_of_user_colon_secret_is_hidden_whatever_the_user(user: str) -> None:
    """Basic auth as a server echoes it: the secret sits at any of base64's 3 alignments."""
    token = base64.b64encode(f"{user}:{SECRET}".encode()).decode()
    out = Redactor({"S": SECRET}).redact(f"Authorization: Basic {token}")
    offset = len(user) + 1  # the characters made of the secret's bits alone:
    secret_only = token[-(-8 * offset // 6) : 8 * (offset + len(SECRET.encode())) // 6]
    assert PLACEHOLDER in out
    _assert_no_piece(out, SECRET, secret_only)


def _assert_no_piece(text: str, *values: str) -> None:
    for value in values:
        for i in range(len(value) - FRAGMENT + 1):
            assert value[i : i + FRAGMENT] not in text, (value[i : i + FRAGMENT], text)


def test_any_run_of_six_characters_is_hidden_anywhere() -> None:
    r = Redactor({"S": SECRET})
    for start in range(0, len(SECRET) - FRAGMENT + 1):
        for length in (FRAGMENT, FRAGMENT + 3):
            piece = SECRET[start : start + length]
            out = r.redact(f"before<{piece}>after")
            assert out == f"before<{REDACTED}>after"


def test_a_shorter_piece_inside_a_text_is_left_alone() -> None:
    """'Meaningful' is 6 characters in the middle of a text: 5 could be chance."""
    r = Redactor({"S": "zq81Kx0pw"})
    assert r.redact("see zq81K here") == "see zq81K here"


@pytest.mark.parametrize("keep", range(CUT_FRAGMENT, len(SECRET)))
def test_a_tail_that_starts_with_the_end_of_a_secret_masks_it(keep: int) -> None:
    r = Redactor({"S": SECRET})
    text = SECRET[-keep:] + " and the rest"
    out = r.redact(text, cut_start=True)
    assert out == f"{REDACTED} and the rest"
    out, _ = r.tail(("x" * 50 + SECRET + " and the rest")[-(keep + 13) :], 4096, cut_start=True)
    assert out == f"{REDACTED} and the rest"


@pytest.mark.parametrize("keep", range(CUT_FRAGMENT, len(SECRET)))
def test_a_head_that_ends_with_the_start_of_a_secret_masks_it(keep: int) -> None:
    out = Redactor({"S": SECRET}).redact("body: " + SECRET[:keep], cut_end=True)
    assert out == f"body: {REDACTED}"


def test_fewer_than_four_characters_at_a_cut_are_not_masked() -> None:
    r = Redactor({"S": "zq81Kx0pw"})
    assert r.redact("0pw rest", cut_start=True) == "0pw rest"
    assert r.redact("x0pw rest", cut_start=True) == f"{REDACTED} rest"
    assert r.redact("x0pw rest") == "x0pw rest"  # no cut there: chance, not a cut


def test_a_cut_inside_an_encoded_form_is_masked() -> None:
    r = Redactor({"S": SECRET})
    b64 = base64.b64encode(SECRET.encode()).decode()
    percent = urllib.parse.quote(SECRET, safe="")
    for form in (b64, percent):
        for keep in (CUT_FRAGMENT, CUT_FRAGMENT + 1, len(form) // 2):
            assert r.redact(form[-keep:] + " x", cut_start=True) == f"{REDACTED} x"
            assert r.redact("x " + form[:keep], cut_end=True) == f"x {REDACTED}"


def test_a_multibyte_character_cut_in_half_does_not_shield_the_rest() -> None:
    value = "é" + secrets.token_hex(6)
    r = Redactor({"S": value})
    cut = value.encode()[1:].decode("utf-8", "replace")  # "\ufffd" + the rest
    assert value[1:] not in r.redact(cut + " tail", cut_start=True)


def test_tail_and_head_never_split_a_placeholder() -> None:
    r = Redactor({"S": SECRET})
    text = "a" * 100 + SECRET + "b" * 5
    for limit in range(1, 30):
        tail, shortened = r.tail(text, limit)
        assert shortened and tail.endswith("b" * min(limit, 5))
        assert "ret:" not in tail or PLACEHOLDER in tail
        head, shortened = r.head("b" * 5 + SECRET + "a" * 100, limit)
        assert shortened and ("{sec" not in head or PLACEHOLDER in head)


def test_the_host_of_a_url_valued_secret_is_not_masked_elsewhere() -> None:
    url = f"https://hooks.example.com/services/{secrets.token_hex(12)}"
    r = Redactor({"HOOK": url})
    assert r.redact("GET https://hooks.example.com/health") == (
        "GET https://hooks.example.com/health"
    )
    path = url.removeprefix("https://hooks.example.com")
    assert r.redact(f"POST {path} HTTP/1.1") == f"POST {REDACTED} HTTP/1.1"
    assert r.redact(f"x {url} y") == "x {secret:HOOK} y"


def test_a_secret_that_is_not_utf8_is_hidden_too() -> None:
    """An environment variable with bytes that are not UTF-8 (surrogate-escaped)."""
    value = "k3y\udcff" + secrets.token_urlsafe(12)
    r = Redactor({"S": value})
    raw = value.encode("utf-8", "surrogateescape")
    assert r.redact(f"<{value}>") == f"<{PLACEHOLDER}>"
    assert r.redact(f"<{base64.b64encode(raw).decode()}>") == f"<{PLACEHOLDER}>"
    assert r.redact(f"<{urllib.parse.quote(raw, safe='')}>") == f"<{PLACEHOLDER}>"


def test_a_short_secret_hides_no_short_piece_of_its_base64() -> None:
    r = Redactor({"PIN": "4711"})
    # the characters of its base64 at each alignment: too short to mean anything
    text = "NDcxM, Q3MT, 0NzEx and 4711"
    assert r.redact(text) == "NDcxM, Q3MT, 0NzEx and {secret:PIN}"


def test_text_without_secrets_is_unchanged() -> None:
    r = Redactor({"S": SECRET})
    text = "line 00000001 " + "x" * 50 + "\n" + json.dumps({"ok": True, "a+b": "c d"})
    assert r.redact(text) == text
    assert r.redact(text, cut_start=True, cut_end=True) == text


def test_log_records_and_their_tracebacks_are_redacted(caplog, monkeypatch) -> None:
    monkeypatch.setenv("OPERATOR_SECRET_TRACED", SECRET)
    SecretResolver().get("TRACED")
    install_log_filter()
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("operator.runner")
    try:
        raise RuntimeError(f"boom with {urllib.parse.quote(SECRET)}")
    except RuntimeError:
        log.exception("attempt failed: %s", SECRET)
    logging.getLogger("httpx").info("HTTP Request: GET %s", _httpx_query_form(SECRET))
    _assert_no_piece(caplog.text, SECRET, urllib.parse.quote(SECRET))
    assert "{secret:TRACED}" in caplog.text


def test_the_runner_log_is_redacted_whatever_logger_writes_to_it(tmp_path) -> None:
    """A process that loaded a runbook writes no secret to stderr (the runner's log) even
    through a logger nobody configured (Python's last-resort handler)."""
    runbook = tmp_path / "rb.toml"
    runbook.write_text('[actions.a]\nargv = ["true"]\nenv = { T = "{secret:X}" }\n')
    script = (
        "import logging, sys\n"
        "from operator_core.subjects.runbook import RunbookSubject\n"
        "from operator_core.secrets import SecretResolver\n"
        "RunbookSubject(sys.argv[1])\n"
        "value = SecretResolver().get('X')\n"
        "logging.getLogger('some.library').warning('leaked %s', value)\n"
        "try:\n"
        "    raise ValueError(value)\n"
        "except ValueError:\n"
        "    logging.getLogger('other').exception('failed')\n"
    )
    env = {**os.environ, "OPERATOR_SECRET_X": SECRET}
    done = subprocess.run(
        [sys.executable, "-c", script, str(runbook)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "leaked {secret:X}" in done.stderr and "ValueError: {secret:X}" in done.stderr
    _assert_no_piece(done.stderr, SECRET)


def test_a_checksum_is_not_masked_for_a_hex_looking_piece_of_an_encoding() -> None:
    """Runs of hex digits in an encoded form (base64 has some) are not fragments: a
    command printing checksums would lose them by chance."""
    while True:  # a secret whose base64 holds 6 hex digits in a row
        value = secrets.token_urlsafe(24)
        b64 = base64.b64encode(value.encode()).decode()
        found = re.search("[0-9a-f]{6}", b64)
        if found and not re.search("[0-9a-f]{6}", value):
            break
    checksum = "9" * 20 + found.group(0) + "0" * 38
    assert Redactor({"S": value}).redact(f"sha256 {checksum}") == f"sha256 {checksum}"
