"""``--db`` as a SQLite path or a PostgreSQL URL, and passwords never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from operator_core.db.url import is_postgres_url, parse_target, redact, scrub


@pytest.mark.parametrize(
    "value",
    [
        "postgresql://u@h/db",
        "postgres://u:pw@h:5432/db",
        "POSTGRESQL://h/db",
        "  postgresql://h/db  ",
        "postgresql:///db?host=/run/postgresql",
    ],
)
def test_postgres_urls(value: str) -> None:
    target = parse_target(value)
    assert target.is_postgres and target.path is None
    assert target.url == value.strip()


@pytest.mark.parametrize(
    "value", ["operator.db", "/var/lib/operator/operator.db", "~/x.db", "mysql://h/db", "pg.db"]
)
def test_everything_else_is_a_sqlite_path(value: str) -> None:
    target = parse_target(value)
    assert not target.is_postgres
    assert target.path == Path(value).expanduser()
    assert target.display == str(Path(value).expanduser())
    assert not is_postgres_url(Path("postgresql://h/db"))  # a Path is always a file


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://alice:s3cret@db.example/ops", "postgresql://alice:***@db.example/ops"),
        ("postgresql://alice@db.example/ops", "postgresql://alice@db.example/ops"),
        ("postgresql://db.example/ops?password=s3cret", "postgresql://db.example/ops?password=***"),
        (
            "postgresql://db/ops?sslmode=require&PASSWORD=s3cret&x=1",
            "postgresql://db/ops?sslmode=require&PASSWORD=***&x=1",
        ),
        ("postgresql://al:p@ss/w@db:5/ops", "postgresql://al:***@db:5/ops"),
        ("postgresql://al:%40pw@db/ops", "postgresql://al:***@db/ops"),
        ("postgresql://:pw@db/ops", "postgresql://:***@db/ops"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert parse_target(url).display == shown


_secret = st.text(
    st.characters(codec="ascii", exclude_characters="\x00\r\n?#&"), min_size=4, max_size=20
).filter(lambda s: s.strip() == s and "@" not in s[-1:] and "*" not in s)


@given(
    user=st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
    password=_secret,
    host=st.sampled_from(["db", "10.0.0.1", "db.example:6543", "[::1]:5432"]),
    in_query=st.booleans(),
)
def test_no_password_survives_redaction(
    user: str, password: str, host: str, in_query: bool
) -> None:
    url = (
        f"postgresql://{user}@{host}/ops?sslmode=require&password={password}"
        if in_query
        else f"postgresql://{user}:{password}@{host}/ops"
    )
    assert password not in redact(url).replace("***", "")
    message = f"connection to {url} failed:\n  password {password} rejected"
    scrubbed = scrub(message, url)
    assert password not in scrubbed.replace("***", "")
    assert "\n" not in scrubbed
