"""Mongo-style filters and projections, translated into parameterized SQL.

The public client speaks MongoDB's query language to ``/view`` and
``/work/withdraw``. This module accepts the part of it that clients use and
rejects everything else with a ``QueryError`` that names the operator or field:

- equality ``{"f": v}`` (and ``$eq``); when the stored value is an array, the
  filter matches if any element equals ``v``;
- ``$ne``, ``$in``, ``$nin``, ``$gt``, ``$gte``, ``$lt``, ``$lte``, ``$exists``;
- dotted paths into the document (``config.parent``, ``config.archive.results``);
- ``$expr`` with one of ``$eq $gt $gte $lt $lte`` over two ``"$field"`` operands.

Values are always bound as parameters. Field names must match
``FIELD_PATTERN`` and reach SQL only as bound JSON paths, never as SQL text,
so a filter cannot inject SQL. A field that a store keeps in its own typed
column (``pipeline``, ``priority`` …) is compared on that column when the
value has the column's type, which lets the database use its indexes.
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

#: A field name: identifiers of letters, digits and underscores, joined by dots.
FIELD_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
FIELD_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
EXPR_OPERATORS = ("$eq", "$gt", "$gte", "$lt", "$lte")
SUPPORTED = ", ".join((*FIELD_OPERATORS, "$expr"))
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

Comparison = Literal["==", ">", ">=", "<", "<="]
_COMPARISONS: dict[str, Comparison] = {
    "$eq": "==",
    "$gt": ">",
    "$gte": ">=",
    "$lt": "<",
    "$lte": "<=",
}


class QueryError(ValueError):
    """A filter or projection uses something this service does not support."""


@dataclass(frozen=True)
class Column:
    """A document field that a table also keeps in a typed column."""

    sql: str
    kind: Literal["text", "number"]

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` can be compared on the column with document semantics."""
        if self.kind == "text":
            return isinstance(value, str)
        return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Target:
    """What a filter runs against: typed columns and the JSON document column."""

    columns: Mapping[str, Column]
    document: str


@dataclass
class Clause:
    """A SQL boolean expression, its parameters, and whether it reads the document."""

    sql: str
    params: list[Any] = field(default_factory=list)
    uses_document: bool = False


Path = tuple[str, ...]
Test = tuple[Comparison, Any]


class Dialect(ABC):
    """How one database expresses the document tests a filter needs."""

    placeholder: str

    @abstractmethod
    def any_value(self, document: str, path: Path, tests: Sequence[Test]) -> Clause:
        """True when the value at ``path``, or any element of the array there, passes a test."""

    @abstractmethod
    def missing(self, document: str, path: Path) -> Clause:
        """True when the document has no value at ``path``."""

    @abstractmethod
    def equals_json(self, document: str, path: Path, value: Any) -> Clause:
        """True when the value at ``path`` is exactly the object or array ``value``."""

    @abstractmethod
    def compare_paths(self, document: str, op: Comparison, left: Path, right: Path) -> Clause:
        """True when the values at two paths compare as ``op``."""

    @abstractmethod
    def column_in(self, column: str, values: Sequence[Any]) -> Clause:
        """True when ``column`` equals one of ``values``."""

    def column_compare(self, column: str, op: Comparison, value: Any) -> Clause:
        sql_op = "=" if op == "==" else op
        return Clause(f"{column} {sql_op} {self.placeholder}", [value])


class PostgresDialect(Dialect):
    """PostgreSQL: documents are ``jsonb``; tests are SQL/JSON path expressions.

    Path expressions run in lax mode, which unwraps arrays, so ``$."tags" ? (@ == $v0)``
    matches a tag list containing ``v0`` as MongoDB does; mismatched types never match.
    """

    placeholder = "%s"

    @staticmethod
    def _jsonpath(path: Path) -> str:
        return "$" + "".join(f'."{part}"' for part in path)

    def any_value(self, document: str, path: Path, tests: Sequence[Test]) -> Clause:
        variables: dict[str, Any] = {}
        conditions = []
        for number, (op, value) in enumerate(tests):
            if value is None:
                conditions.append(f"@ {op} null")
                continue
            variables[f"v{number}"] = value
            conditions.append(f"@ {op} $v{number}")
        expression = f"{self._jsonpath(path)} ? ({' || '.join(conditions)})"
        return Clause(
            f"jsonb_path_exists({document}, %s::jsonpath, %s::jsonb)",
            [expression, json.dumps(variables)],
            True,
        )

    def missing(self, document: str, path: Path) -> Clause:
        return Clause(f"({document} #> %s::text[]) IS NULL", [list(path)], True)

    def equals_json(self, document: str, path: Path, value: Any) -> Clause:
        return Clause(
            f"COALESCE(({document} #> %s::text[]) = %s::jsonb, FALSE)",
            [list(path), json.dumps(value)],
            True,
        )

    def compare_paths(self, document: str, op: Comparison, left: Path, right: Path) -> Clause:
        sql_op = "=" if op == "==" else op
        return Clause(
            f"COALESCE(({document} #> %s::text[]) {sql_op} ({document} #> %s::text[]), FALSE)",
            [list(left), list(right)],
            True,
        )

    def column_in(self, column: str, values: Sequence[Any]) -> Clause:
        if any(isinstance(value, float) for value in values):
            values = [float(value) for value in values]
        return Clause(f"{column} = ANY(%s)", [list(values)])


class SQLiteDialect(Dialect):
    """SQLite: documents are JSON text; tests walk them with ``json_each``.

    ``json_each`` on a path yields the array's elements, or the single value
    when it is not an array, which gives MongoDB's "equal or contains" rule.
    """

    placeholder = "?"
    _TYPES: Mapping[str, str] = {
        "text": "e.type = 'text'",
        "number": "e.type IN ('integer', 'real')",
        "boolean": "e.type IN ('true', 'false')",
    }

    @staticmethod
    def _jsonpath(path: Path) -> str:
        return "$" + "".join(f'."{part}"' for part in path)

    def _test(self, op: Comparison, value: Any) -> tuple[str, list[Any]]:
        if value is None:
            return "e.type = 'null'", []
        if isinstance(value, bool):
            if op == "==":
                return ("e.type = 'true'" if value else "e.type = 'false'"), []
            kind = "boolean"
            value = int(value)
        elif isinstance(value, str):
            kind = "text"
        else:
            kind = "number"
        sql_op = "=" if op == "==" else op
        return f"({self._TYPES[kind]} AND e.value {sql_op} ?)", [value]

    def any_value(self, document: str, path: Path, tests: Sequence[Test]) -> Clause:
        conditions, params = [], []
        for op, value in tests:
            sql, values = self._test(op, value)
            conditions.append(sql)
            params.extend(values)
        jsonpath = self._jsonpath(path)
        return Clause(
            # Only fixed SQL and placeholders are composed here; values are parameters.
            f"(COALESCE(json_type({document}, ?) <> 'object', FALSE) AND EXISTS "  # noqa: S608
            f"(SELECT 1 FROM json_each({document}, ?) AS e WHERE {' OR '.join(conditions)}))",
            [jsonpath, jsonpath, *params],
            True,
        )

    def missing(self, document: str, path: Path) -> Clause:
        return Clause(f"json_type({document}, ?) IS NULL", [self._jsonpath(path)], True)

    def equals_json(self, document: str, path: Path, value: Any) -> Clause:
        return Clause(
            f"COALESCE(({document} -> ?) = json(?), FALSE)",
            [self._jsonpath(path), json.dumps(value, separators=(",", ":"))],
            True,
        )

    def compare_paths(self, document: str, op: Comparison, left: Path, right: Path) -> Clause:
        sql_op = "=" if op == "==" else op
        return Clause(
            f"COALESCE(json_extract({document}, ?) {sql_op} json_extract({document}, ?), FALSE)",
            [self._jsonpath(left), self._jsonpath(right)],
            True,
        )

    def column_in(self, column: str, values: Sequence[Any]) -> Clause:
        marks = ", ".join("?" for _ in values)
        return Clause(f"{column} IN ({marks})", list(values))


# ----------------------------------------------------------------------------- filters
def check_field(name: Any, where: str = "query") -> Path:
    """Split a field name into its path, or raise ``QueryError`` if it is not safe."""
    if not isinstance(name, str) or not FIELD_PATTERN.fullmatch(name):
        raise QueryError(
            f"{where}: field name {name!r} is not allowed; field names are letters, digits "
            "and underscores, joined by dots (e.g. 'config.parent')"
        )
    return tuple(name.split("."))


def _check_value(value: Any, where: str, depth: int = 0) -> None:
    """Reject values a database cannot compare: huge integers, NaN, NUL characters."""
    if depth > 32:
        raise QueryError(f"{where}: value is nested too deeply")
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise QueryError(f"{where}: integer {value} is outside the 64-bit range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise QueryError(f"{where}: number {value} is not finite")
    elif isinstance(value, str):
        if "\x00" in value:
            raise QueryError(f"{where}: strings may not contain NUL characters")
    elif isinstance(value, list):
        for item in value:
            _check_value(item, where, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_value(key, where, depth + 1)
            _check_value(item, where, depth + 1)
    else:
        raise QueryError(f"{where}: {type(value).__name__} values are not supported")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _not(clause: Clause) -> Clause:
    return Clause(f"NOT ({clause.sql})", clause.params, clause.uses_document)


def _any(clauses: Sequence[Clause]) -> Clause:
    if not clauses:
        return Clause("FALSE")
    if len(clauses) == 1:
        return clauses[0]
    return _join(clauses, " OR ")


def _all(clauses: Sequence[Clause]) -> Clause:
    if not clauses:
        return Clause("TRUE")
    if len(clauses) == 1:
        return clauses[0]
    return _join(clauses, " AND ")


def _join(clauses: Sequence[Clause], glue: str) -> Clause:
    return Clause(
        "(" + glue.join(f"({clause.sql})" for clause in clauses) + ")",
        [param for clause in clauses for param in clause.params],
        any(clause.uses_document for clause in clauses),
    )


class _Translator:
    def __init__(self, dialect: Dialect, target: Target) -> None:
        self.dialect = dialect
        self.target = target

    # Equality and membership -------------------------------------------------------
    def equals(self, name: str, path: Path, value: Any) -> Clause:
        column = self.target.columns.get(name)
        if column is not None and column.accepts(value):
            return self.dialect.column_compare(column.sql, "==", value)
        return self.one_of(name, path, [value])

    def one_of(self, name: str, path: Path, values: Sequence[Any]) -> Clause:
        column = self.target.columns.get(name)
        if values and column is not None and all(column.accepts(value) for value in values):
            if len(values) == 1:  # "= v" lets an index deliver rows in order; "IN (v)" may not
                return self.dialect.column_compare(column.sql, "==", values[0])
            return self.dialect.column_in(column.sql, values)
        document = self.target.document
        scalars = [value for value in values if not isinstance(value, dict | list)]
        clauses: list[Clause] = []
        if scalars:
            clauses.append(self.dialect.any_value(document, path, [("==", v) for v in scalars]))
        if None in scalars:
            clauses.append(self.dialect.missing(document, path))
        for value in values:
            if isinstance(value, dict | list):
                clauses.append(self.dialect.equals_json(document, path, value))
        return _any(clauses)

    # One field ---------------------------------------------------------------------
    def field(self, name: str, condition: Any) -> Clause:
        path = check_field(name)
        if isinstance(condition, dict) and any(str(key).startswith("$") for key in condition):
            plain = [key for key in condition if not str(key).startswith("$")]
            if plain:
                raise QueryError(
                    f"query: at {name!r}, operators and field names cannot be mixed "
                    f"in one object (found {plain[0]!r})"
                )
            return _all([self.operator(name, path, op, arg) for op, arg in condition.items()])
        _check_value(condition, f"query: value at {name!r}")
        return self.equals(name, path, condition)

    def operator(self, name: str, path: Path, op: str, argument: Any) -> Clause:
        where = f"query: {op!r} at {name!r}"
        if op not in FIELD_OPERATORS:
            raise QueryError(
                f"unsupported query operator {op!r} at {name!r}; supported: {SUPPORTED}"
            )
        _check_value(argument, where)
        if op == "$eq":
            return self.equals(name, path, argument)
        if op == "$ne":
            return _not(self.equals(name, path, argument))
        if op in ("$in", "$nin"):
            if not isinstance(argument, list):
                raise QueryError(f"{where} needs an array, not {_type_name(argument)}")
            clause = self.one_of(name, path, argument)
            return clause if op == "$in" else _not(clause)
        if op == "$exists":
            if not isinstance(argument, bool | int):
                raise QueryError(f"{where} needs true or false, not {_type_name(argument)}")
            clause = self.dialect.missing(self.target.document, path)
            return _not(clause) if argument else clause
        comparison = _COMPARISONS[op]
        if argument is None or isinstance(argument, dict | list):
            raise QueryError(
                f"{where} needs a number, string or boolean, not {_type_name(argument)}"
            )
        column = self.target.columns.get(name)
        if column is not None and column.accepts(argument):
            return self.dialect.column_compare(column.sql, comparison, argument)
        return self.dialect.any_value(self.target.document, path, [(comparison, argument)])

    # $expr ---------------------------------------------------------------------------
    def expression(self, expression: Any) -> Clause:
        example = '{"$expr": {"$gte": ["$attempt", "$retries"]}}'
        if not isinstance(expression, dict) or len(expression) != 1:
            raise QueryError(f"query: '$expr' needs one comparison, e.g. {example}")
        [(op, operands)] = expression.items()
        if op not in EXPR_OPERATORS:
            raise QueryError(
                f"unsupported query operator {op!r} in '$expr'; supported: "
                f"{', '.join(EXPR_OPERATORS)}"
            )
        if not isinstance(operands, list) or len(operands) != 2:
            raise QueryError(f"query: '$expr' {op!r} needs two operands, e.g. {example}")
        paths = []
        for operand in operands:
            if not isinstance(operand, str) or not operand.startswith("$"):
                raise QueryError(
                    f"query: '$expr' {op!r} compares two fields written as \"$field\", "
                    f"not {operand!r}"
                )
            paths.append(check_field(operand[1:], "query: '$expr'"))
        return self.dialect.compare_paths(
            self.target.document, _COMPARISONS[op], paths[0], paths[1]
        )


def translate(query: Any, dialect: Dialect, target: Target) -> Clause:
    """Translate a Mongo-style filter into a SQL condition over ``target``.

    Raises ``QueryError`` naming the operator or field when the filter uses
    anything outside the supported subset.
    """
    if not isinstance(query, dict):
        raise QueryError(f"query: must be an object, not {_type_name(query)}")
    translator = _Translator(dialect, target)
    clauses = []
    for name, condition in query.items():
        if name == "$expr":
            clauses.append(translator.expression(condition))
        elif isinstance(name, str) and name.startswith("$"):
            raise QueryError(
                f"unsupported query operator {name!r} at the top level; supported: {SUPPORTED}"
            )
        else:
            clauses.append(translator.field(name, condition))
    return _all(clauses)


# ----------------------------------------------------------------------------- projections
@dataclass(frozen=True)
class Projection:
    """A MongoDB projection: keep only ``paths`` (inclusion) or drop them (exclusion)."""

    include: bool
    paths: tuple[Path, ...]

    @property
    def top_keys(self) -> list[str] | None:
        """Top-level keys an inclusion needs (a store may fetch only those), else None."""
        if not self.include:
            return None
        return sorted({path[0] for path in self.paths})

    def apply(self, document: dict[str, Any]) -> dict[str, Any]:
        """The projected copy of ``document``; ``_id`` is never part of it."""
        if self.include:
            result: dict[str, Any] = {}
            for path in self.paths:
                _copy_path(document, result, path)
            return result
        result = dict(document)
        for path in self.paths:
            _drop_path(result, path)
        result.pop("_id", None)
        return result


def _copy_path(source: dict[str, Any], target: dict[str, Any], path: Path) -> None:
    head, rest = path[0], path[1:]
    if head not in source:
        return
    if not rest:
        target[head] = source[head]
        return
    inner = source[head]
    if isinstance(inner, dict):
        branch = target.get(head)
        if not isinstance(branch, dict):
            branch = target[head] = {}
        _copy_path(inner, branch, rest)


def _drop_path(document: dict[str, Any], path: Path) -> None:
    head, rest = path[0], path[1:]
    if not rest:
        document.pop(head, None)
        return
    inner = document.get(head)
    if isinstance(inner, dict):
        document[head] = inner = dict(inner)
        _drop_path(inner, rest)


def parse_projection(projection: Any) -> Projection | None:
    """Read a MongoDB projection; None means "the whole document".

    Values are ``true``/``1`` (include) or ``false``/``0`` (exclude); one
    projection may not mix the two, except for ``_id``, which is never returned.
    """
    if projection is None:
        return None
    if not isinstance(projection, dict):
        raise QueryError(f"projection: must be an object, not {_type_name(projection)}")
    included: list[tuple[str, ...]] = []
    excluded: list[tuple[str, ...]] = []
    for name, flag in projection.items():
        path = check_field(name, "projection")
        if isinstance(flag, bool) or (isinstance(flag, int) and flag in (0, 1)):
            if name != "_id":
                (included if flag else excluded).append(path)
        else:
            raise QueryError(
                f"projection: value of {name!r} must be true/false or 1/0, not {flag!r}"
            )
    if included and excluded:
        raise QueryError(
            "projection: cannot mix inclusion and exclusion (only '_id' may be excluded "
            "from an inclusion)"
        )
    if included:
        return Projection(include=True, paths=tuple(included))
    if excluded:
        return Projection(include=False, paths=tuple(excluded))
    return None
