"""Mongo-style filters and projections: what is translated, what is refused, and how.

Translation is checked as SQL text (columns used, values only as parameters)
and, for SQLite, by running the SQL against an in-memory database so that the
semantics (array contains, null versus missing, type mismatch) are real.
PostgreSQL semantics are covered over HTTP in tests/integration/buckets.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from workflow.buckets.queries import (
    PostgresDialect,
    QueryError,
    SQLiteDialect,
    Target,
    parse_projection,
    translate,
)
from workflow.buckets.stores.base import QUEUE_COLUMNS, WORK_COLUMNS, split_pipelines

DIALECTS = [
    pytest.param(PostgresDialect(), id="postgres"),
    pytest.param(SQLiteDialect(), id="sqlite"),
]
WORKS = Target(WORK_COLUMNS, "doc")

DOCUMENTS: list[dict[str, Any]] = [
    {
        "id": "a",
        "pipeline": "p",
        "status": "queued",
        "priority": 5,
        "creation": 1.0,
        "site": "local",
        "user": "ada",
        "tags": ["x", "y"],
        "event": [1, 2],
        "attempt": 3,
        "retries": 2,
        "results": None,
        "config": {"parent": "root", "archive": {"results": True}},
    },
    {
        "id": "b",
        "pipeline": "p",
        "status": "success",
        "priority": 1,
        "creation": 2.0,
        "site": "testing",
        "user": "bob",
        "tags": "x",
        "event": [3],
        "attempt": 1,
        "retries": 2,
        "results": {"n": 1},
        "config": {"parent": None, "archive": {"results": False}},
    },
    {
        "id": "c",
        "pipeline": "q",
        "status": "failure",
        "priority": 3,
        "creation": 3.0,
        "site": "local",
        "user": "ada",
        "event": None,
        "attempt": 0,
        "retries": 0,
        "config": {"archive": {"results": True}},
        "parameters": {"name": "3", "size": 3},
    },
]


@pytest.fixture(scope="module")
def database() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:")
    connection.execute(
        "CREATE TABLE works (id TEXT, pipeline TEXT, status TEXT, priority INTEGER, "
        'creation REAL, site TEXT, "user" TEXT, doc TEXT)'
    )
    for document in DOCUMENTS:
        connection.execute(
            "INSERT INTO works VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                document["id"],
                document["pipeline"],
                document["status"],
                document["priority"],
                document["creation"],
                document["site"],
                document["user"],
                json.dumps(document),
            ),
        )
    yield connection
    connection.close()


def matching(connection: sqlite3.Connection, query: dict[str, Any]) -> list[str]:
    clause = translate(query, SQLiteDialect(), WORKS)
    rows = connection.execute(
        f"SELECT id FROM works WHERE {clause.sql} ORDER BY id",  # noqa: S608 - under test
        clause.params,
    ).fetchall()
    return [row[0] for row in rows]


# ----------------------------------------------------------------------------- semantics
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["a", "b", "c"]),
        ({"pipeline": "p"}, ["a", "b"]),
        ({"pipeline": {"$in": ["q"]}}, ["c"]),
        ({"pipeline": {"$in": ["p", "q"]}, "user": "ada"}, ["a", "c"]),
        ({"tags": "x"}, ["a", "b"]),  # scalar equal, or array containing
        ({"tags": {"$in": ["y", "zz"]}}, ["a"]),
        ({"event": {"$in": [2, 3]}}, ["a", "b"]),
        ({"event": 3}, ["b"]),
        ({"config.parent": "root"}, ["a"]),
        ({"config.parent": {"$in": ["root"]}}, ["a"]),
        ({"config.parent": None}, ["b", "c"]),  # null or missing
        ({"config.archive.results": True}, ["a", "c"]),
        ({"config.archive.results": False}, ["b"]),
        ({"results": None}, ["a", "c"]),
        ({"results": {"n": 1}}, ["b"]),
        ({"results": {"$exists": True}}, ["a", "b"]),
        ({"results": {"$exists": False}}, ["c"]),
        ({"tags": {"$exists": False}}, ["c"]),
        ({"status": {"$ne": "queued"}}, ["b", "c"]),
        ({"status": {"$nin": ["queued", "failure"]}}, ["b"]),
        ({"tags": {"$ne": "x"}}, ["c"]),
        ({"tags": {"$nin": ["y"]}}, ["b", "c"]),
        ({"creation": {"$gt": 1.0}}, ["b", "c"]),
        ({"creation": {"$gte": 1.0, "$lt": 3}}, ["a", "b"]),
        ({"priority": {"$lte": 3}}, ["b", "c"]),
        ({"event": {"$gt": 2}}, ["b"]),  # any element
        ({"parameters.size": {"$gte": 3}}, ["c"]),
        ({"parameters.size": "3"}, []),  # a string never equals a number
        ({"parameters.name": 3}, []),
        ({"parameters.name": "3"}, ["c"]),
        ({"priority": "5"}, []),
        ({"priority": True}, []),  # a boolean is not the number 1
        ({"user": {"$gt": "ada"}}, ["b"]),
        ({"$expr": {"$gte": ["$attempt", "$retries"]}}, ["a", "c"]),
        ({"$expr": {"$lt": ["$attempt", "$retries"]}}, ["b"]),
        ({"$expr": {"$eq": ["$attempt", "$retries"]}}, ["c"]),
        ({"pipeline": {"$in": []}}, []),
        ({"id": {"$eq": "b"}}, ["b"]),
    ],
)
def test_sqlite_translation_matches_mongo_semantics(
    database: sqlite3.Connection, query: dict[str, Any], expected: list[str]
) -> None:
    assert matching(database, query) == expected


# ----------------------------------------------------------------------------- shape of the SQL
@pytest.mark.parametrize("dialect", DIALECTS)
def test_column_fields_compare_on_their_column(dialect: Any) -> None:
    clause = translate({"pipeline": "p", "priority": {"$gte": 3}}, dialect, WORKS)
    assert "pipeline = " in clause.sql
    assert "priority >= " in clause.sql
    assert clause.params == ["p", 3]
    assert not clause.uses_document


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_single_value_in_list_becomes_an_index_friendly_equality(dialect: Any) -> None:
    clause = translate({"pipeline": {"$in": ["p"]}}, dialect, WORKS)
    assert clause.sql == f"pipeline = {dialect.placeholder}"
    assert clause.params == ["p"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_document_fields_reach_sql_only_as_parameters(dialect: Any) -> None:
    clause = translate({"config.parent": {"$in": ["x"]}, "secret_field": 1}, dialect, WORKS)
    assert clause.uses_document
    assert "secret_field" not in clause.sql
    assert "parent" not in clause.sql
    assert any("secret_field" in str(param) for param in clause.params)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_withdraw_filters_use_queue_columns_and_join_only_for_document_fields(dialect: Any) -> None:
    queue = Target(QUEUE_COLUMNS, "w.doc")
    assert not translate({"pipeline": "p", "site": "s", "user": "u"}, dialect, queue).uses_document
    clause = translate({"pipeline": "p", "tags": {"$in": ["t"]}}, dialect, queue)
    assert clause.uses_document
    assert "q.pipeline = " in clause.sql


@pytest.mark.parametrize("dialect", DIALECTS)
def test_values_with_hostile_text_stay_parameters(dialect: Any) -> None:
    hostile = "x'); DROP TABLE works; --"
    clause = translate({"pipeline": hostile, "tags": hostile}, dialect, WORKS)
    assert "DROP" not in clause.sql
    assert hostile in clause.params


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"$where": "sleep(1)"}, "unsupported query operator '$where' at the top level"),
        ({"$or": [{"a": 1}]}, "unsupported query operator '$or' at the top level"),
        ({"status": {"$regex": "^q"}}, "unsupported query operator '$regex' at 'status'"),
        ({"tags": {"$elemMatch": {"$eq": 1}}}, "unsupported query operator '$elemMatch' at 'tags'"),
        ({"tags": {"$in": "x"}}, "'$in' at 'tags' needs an array, not string"),
        ({"tags": {"$nin": {"a": 1}}}, "'$nin' at 'tags' needs an array, not object"),
        ({"creation": {"$gt": None}}, "'$gt' at 'creation' needs a number, string or boolean"),
        ({"creation": {"$lt": [1]}}, "'$lt' at 'creation' needs a number, string or boolean"),
        ({"results": {"$exists": "yes"}}, "'$exists' at 'results' needs true or false"),
        ({"config": {"$in": [1], "parent": 2}}, "operators and field names cannot be mixed"),
        ({"$expr": {"$add": ["$a", "$b"]}}, "unsupported query operator '$add' in '$expr'"),
        ({"$expr": {"$gte": ["$attempt", 3]}}, 'compares two fields written as "$field"'),
        ({"$expr": {"$gte": ["$attempt"]}}, "needs two operands"),
        ({"$expr": []}, "'$expr' needs one comparison"),
        ({"priority": 2**70}, "outside the 64-bit range"),
        ({"pipeline": "a\x00b"}, "NUL"),
        ({"creation": {"$gt": float("nan")}}, "not finite"),
    ],
)
def test_unsupported_filters_are_refused_with_a_message_naming_them(
    dialect: Any, query: dict[str, Any], message: str
) -> None:
    with pytest.raises(QueryError) as raised:
        translate(query, dialect, WORKS)
    assert message in str(raised.value)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "name",
    ["a;b", "doc'--", "a b", "a..b", ".a", "a.", "", "tags[0]", "a-b", 'x"y', "a$b", "ñ"],
)
def test_unsafe_field_names_are_refused(dialect: Any, name: str) -> None:
    with pytest.raises(QueryError, match="is not allowed; field names are letters, digits"):
        translate({name: 1}, dialect, WORKS)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_unsafe_field_names_in_expr_are_refused(dialect: Any) -> None:
    with pytest.raises(QueryError, match="is not allowed"):
        translate({"$expr": {"$eq": ["$a;drop", "$b"]}}, dialect, WORKS)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_filter_must_be_an_object(dialect: Any) -> None:
    with pytest.raises(QueryError, match="query: must be an object, not array"):
        translate([], dialect, WORKS)  # type: ignore[arg-type]


# --------------------------------------------------------------------- withdraw, several pipelines
def test_several_pipelines_are_split_from_the_rest_of_a_withdraw_filter() -> None:
    query = {"pipeline": {"$in": ["b", "a", "b"]}, "site": "local"}
    assert split_pipelines(query) == (["a", "b"], {"site": "local"})


@pytest.mark.parametrize(
    "query",
    [
        {"pipeline": {"$in": ["only"]}},
        {"pipeline": "plain"},
        {"pipeline": {"$in": ["a", 1]}},
        {"pipeline": {"$in": ["a", "b"], "$ne": "c"}},
        {"site": "local"},
    ],
)
def test_other_pipeline_conditions_are_translated_whole(query: dict[str, Any]) -> None:
    assert split_pipelines(query) is None


# ----------------------------------------------------------------------------- projections
DOCUMENT = {"id": "a", "status": "queued", "config": {"parent": "p", "orgs": ["o"]}, "tags": ["t"]}


@pytest.mark.parametrize(
    ("projection", "expected"),
    [
        ({"id": True, "_id": False}, {"id": "a"}),
        ({"id": 1, "status": 1}, {"id": "a", "status": "queued"}),
        ({"config.parent": True}, {"config": {"parent": "p"}}),
        ({"missing": True}, {}),
        ({"config": False, "_id": 0}, {"id": "a", "status": "queued", "tags": ["t"]}),
        (
            {"config.orgs": 0},
            {"id": "a", "status": "queued", "config": {"parent": "p"}, "tags": ["t"]},
        ),
    ],
)
def test_projections_follow_mongo_rules(
    projection: dict[str, Any], expected: dict[str, Any]
) -> None:
    parsed = parse_projection(projection)
    assert parsed is not None
    assert parsed.apply(DOCUMENT) == expected


def test_exclusion_does_not_change_the_original_document() -> None:
    original = json.loads(json.dumps(DOCUMENT))
    parsed = parse_projection({"config.orgs": False})
    assert parsed is not None
    parsed.apply(original)
    assert original == DOCUMENT


@pytest.mark.parametrize("projection", [None, {}, {"_id": False}])
def test_empty_projections_mean_the_whole_document(projection: Any) -> None:
    assert parse_projection(projection) is None


def test_inclusion_asks_the_store_only_for_the_top_level_keys_it_needs() -> None:
    parsed = parse_projection({"config.parent": 1, "id": 1})
    assert parsed is not None
    assert parsed.top_keys == ["config", "id"]


@pytest.mark.parametrize(
    ("projection", "message"),
    [
        ({"id": True, "status": False}, "cannot mix inclusion and exclusion"),
        ({"id": "yes"}, "value of 'id' must be true/false or 1/0"),
        ({"tags": {"$slice": 1}}, "value of 'tags' must be true/false or 1/0"),
        ({"a;b": 1}, "is not allowed"),
        ([], "projection: must be an object"),
    ],
)
def test_bad_projections_are_refused(projection: Any, message: str) -> None:
    with pytest.raises(QueryError, match=message.replace("(", r"\(")):
        parse_projection(projection)
