"""SQLite placeholders to psycopg's: string literals, quoted names and comments untouched."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st
from operator_core.db.dialect import Sql, for_postgres, for_sqlite, translate

# Pieces a statement is made of: text outside literals (with ? / :name / %), literals and
# quoted names holding anything (placeholder look-alikes, % and doubled quotes included).
_inside = st.text(st.sampled_from("ab ?:%_'x1-*/\n"), max_size=12)
_literal = _inside.map(lambda s: "'" + s.replace("'", "''") + "'")
_quoted = _inside.map(lambda s: '"' + s.replace('"', '""') + '"')
_comment = st.text(st.sampled_from("ab ?:%'"), max_size=8).map(lambda s: f"/* {s} */")
_word = st.sampled_from(["SELECT", " ", ",", "(", ")", "x", " = ", "||", "1", "%", "--c\n"])


def _statements(placeholder: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.one_of(_literal, _quoted, _comment, _word, placeholder), max_size=20)


def untranslate(sql: str) -> tuple[str, int]:
    """psycopg's placeholders back to SQLite's (the inverse the property checks), and how
    many placeholders psycopg would see."""
    out, i, seen = [], 0, 0
    while i < len(sql):
        if sql.startswith("%%", i):
            out.append("%")
            i += 2
        elif sql.startswith("%s", i):
            out.append("?")
            seen += 1
            i += 2
        elif sql.startswith("%(", i):
            end = sql.index(")s", i)
            out.append(":" + sql[i + 2 : end])
            seen += 1
            i = end + 2
        else:
            assert sql[i] != "%", f"a lone % at {i} of {sql!r}"
            out.append(sql[i])
            i += 1
    return "".join(out), seen


@given(_statements(st.just("?")))
def test_positional_round_trip(parts: list[str]) -> None:
    sql = "".join(parts)
    assert untranslate(translate(sql)) == (sql, sum(p == "?" for p in parts))


@given(_statements(st.sampled_from([":a", ":b_2", ":_c"])))
def test_named_round_trip(parts: list[str]) -> None:
    sql = "".join(parts)
    assert untranslate(translate(sql)) == (sql, sum(p.startswith(":") for p in parts))


@given(st.lists(st.one_of(_literal, st.just("?")), min_size=1, max_size=8))
def test_sqlite_and_translation_agree_on_values(parts: list[str]) -> None:
    """The statement SELECTs each part: SQLite runs the original; the translation, read by
    psycopg's own query parser, asks for the same parameters in the same places."""
    from psycopg._queries import PostgresQuery
    from psycopg.adapt import Transformer

    sql = "SELECT " + ", ".join(parts)
    params = tuple(f"v{i}%" for i in range(sum(p == "?" for p in parts)))
    row = sqlite3.connect(":memory:").execute(sql, params).fetchone()
    query = PostgresQuery(Transformer())
    query.convert(translate(sql), params)
    text = query.query.decode()
    # psycopg numbered our %s as $1, $2...; literals came back with single %.
    expected = []
    n = 0
    for part in parts:
        if part == "?":
            n += 1
            expected.append(f"${n}")
        else:
            expected.append(part)
    assert text == "SELECT " + ", ".join(expected)
    assert list(row) == [
        params[int(e[1:]) - 1] if e.startswith("$") else e[1:-1].replace("''", "'")
        for e in expected
    ]


@pytest.mark.parametrize(
    ("sql", "out"),
    [
        (
            "SELECT * FROM t WHERE a = ? AND b LIKE 'x%'",
            "SELECT * FROM t WHERE a = %s AND b LIKE 'x%%'",
        ),
        ("UPDATE t SET a = :a WHERE id = :id", "UPDATE t SET a = %(a)s WHERE id = %(id)s"),
        ("SELECT '?', ':x', \"?\" -- ?\n, ?", "SELECT '?', ':x', \"?\" -- ?\n, %s"),
        ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', %s"),
        ("SELECT a % 2 FROM t", "SELECT a %% 2 FROM t"),
        (
            "SELECT id FROM t INDEXED BY idx_x WHERE a IS NOT ? AND b IS ? AND c IS NOT NULL",
            "SELECT id FROM t  WHERE a IS DISTINCT FROM %s AND b IS NOT DISTINCT FROM %s "
            "AND c IS NOT NULL",
        ),
        (
            "SELECT 1 WHERE this IS :b OR isnot IS NOT :c",
            "SELECT 1 WHERE this IS NOT DISTINCT FROM %(b)s OR isnot IS DISTINCT FROM %(c)s",
        ),
        ("SELECT 'INDEXED BY x', this FROM t NOT INDEXED", "SELECT 'INDEXED BY x', this FROM t "),
        (
            "INSERT INTO t VALUES (?) ON CONFLICT DO NOTHING RETURNING id",
            "INSERT INTO t VALUES (%s) ON CONFLICT DO NOTHING RETURNING id",
        ),
        (
            "SELECT INSTR (lower(a), :n) > 0, instr_x(b), 'instr(c)', main.instr FROM t",
            "SELECT strpos (lower(a), %(n)s) > 0, instr_x(b), 'instr(c)', main.instr FROM t",
        ),
    ],
)
def test_examples(sql: str, out: str) -> None:
    assert translate(sql) == out


@pytest.mark.parametrize(
    "sql",
    ["SELECT ?, :a", "SELECT a IS ?, b IS :b", "SELECT 'open", "SELECT /* open", "SELECT a::int"],
)
def test_refused(sql: str) -> None:
    with pytest.raises(ValueError):
        translate(sql)


def test_a_pair_is_used_as_written() -> None:
    pair = Sql(
        sqlite="INSERT OR IGNORE INTO t VALUES (?)",
        postgres="INSERT INTO t VALUES (%s) ON CONFLICT DO NOTHING",
    )
    assert for_sqlite(pair) == pair.sqlite
    assert for_postgres(pair) == pair.postgres
    assert for_sqlite("SELECT ?") == "SELECT ?"
    assert for_postgres("SELECT ?") == "SELECT %s"
    # The pair is the SQLite text itself: sqlite3 runs it as given.
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a UNIQUE)")
    conn.execute(pair, (1,))
    conn.execute(pair, (1,))
    assert conn.execute(Sql("SELECT count(*) FROM t", "unused")).fetchone() == (1,)
