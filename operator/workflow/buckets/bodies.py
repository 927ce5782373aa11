"""Request bodies read defensively: JSON that cannot hurt the server or the stores.

``json.loads`` accepts things a database cannot hold or a later step cannot
survive: ``NaN`` and ``Infinity``, numbers that overflow to infinity, lone
UTF-16 surrogates, NUL characters, and nesting deep enough to exhaust the
stack. ``parse_json`` turns each of them into a ``BodyError`` whose message
names the problem, so that no body makes the server answer 500.

It also refuses, before parsing, a body holding more than ``max_values``
JSON values (413): the size limit alone lets 16 MiB hold 5.6 million empty
arrays, which parse into about a GiB of Python objects and take seconds of
CPU. Counting needs no parsing (``count_values``): a body holds at most one
value more than it has commas, ``[`` and ``{``, which ``bytes.count`` finds
at memory speed; only when that bound passes the limit are the values
counted exactly, skipping strings, and the count stops as soon as it does.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

#: Deepest nesting of arrays and objects accepted in a request body.
MAX_DEPTH = 64
#: Most JSON values a request body may hold (the default of ``max_body_values``).
MAX_VALUES = 1_000_000
_SURROGATE = re.compile("[\ud800-\udfff]")
#: What ``count_values`` steps over: a string (escapes included; an unterminated
#: one runs to the end, so every match attempt succeeds and the scan stays
#: linear), an empty array or object (a value, but it holds none), or a comma,
#: ``[`` or ``{`` (the group), each of which adds one value.
_TOKEN = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)|\[\s*+\]|\{\s*+\}|([,\[{])', re.DOTALL)
_QUOTE, _WHITESPACE = ord('"'), b" \t\r\n"


class BodyError(ValueError):
    """A request body that cannot be accepted; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyError(f"body: number {text} is too large to represent", 400)
    return value


def _constant(name: str) -> Any:
    raise BodyError(f"body: {name} is not valid JSON (numbers must be finite)", 400)


def too_many_values_message(limit: int) -> str:
    return (
        f"body: holds more than {limit} JSON values, the limit of this server "
        "(each array, object, string, number, true, false and null counts as one)"
    )


def count_values(raw: bytes, limit: int) -> int:
    """A count of the JSON values in ``raw`` that is above ``limit`` exactly when they are.

    At or under the limit it may be the quick upper bound rather than the
    exact count; over it, counting stops at ``limit + 1``. Object keys are not
    counted (each comes with a value that is). Exact for valid JSON; for
    invalid JSON the parser's refusal makes the count moot.
    """
    bound = 1 + raw.count(b",") + raw.count(b"[") + raw.count(b"{")
    if bound <= limit:
        return bound
    if _QUOTE not in raw:  # no strings: count with bytes operations only
        bare = raw.translate(None, _WHITESPACE)
        return bound - bare.count(b"[]") - bare.count(b"{}")
    count = 1
    for token in _TOKEN.finditer(raw):
        if token.lastindex:
            count += 1
            if count > limit:
                break
    return count


def parse_json(raw: bytes, max_values: int = MAX_VALUES) -> Any:
    """Parse a JSON request body, rejecting what the service cannot store or compare."""
    if not raw.strip():
        raise BodyError("body: is empty; a JSON document is required", 400)
    if count_values(raw, max_values) > max_values:
        raise BodyError(too_many_values_message(max_values), 413)
    try:
        value = json.loads(raw.decode("utf-8"), parse_float=_finite, parse_constant=_constant)
    except BodyError:
        raise
    except RecursionError:
        raise BodyError(f"body: is nested more than {MAX_DEPTH} levels deep", 400) from None
    except UnicodeDecodeError:
        raise BodyError("body: is not valid UTF-8", 400) from None
    except json.JSONDecodeError as error:
        raise BodyError(
            f"body: is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})",
            400,
        ) from None
    except ValueError as error:  # e.g. integers longer than Python's digit limit
        raise BodyError(f"body: is not acceptable JSON: {error}", 400) from None
    check_tree(value)
    return value


def check_tree(value: Any) -> None:
    """Reject deep nesting, NUL characters and lone surrogates anywhere in ``value``.

    Depth first, with one iterator per open array or object: memory grows
    with the depth (at most ``MAX_DEPTH``), not with the number of values.
    """
    if isinstance(value, str):
        _check_text(value)
    if not isinstance(value, dict | list):
        return
    stack = [_children(value)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, str):
                _check_text(item)
            elif isinstance(item, dict | list):
                if len(stack) >= MAX_DEPTH:
                    raise BodyError(f"body: is nested more than {MAX_DEPTH} levels deep", 400)
                stack.append(_children(item))
                break
        else:
            stack.pop()


def _children(container: dict[str, Any] | list[Any]) -> Iterator[Any]:
    """The values in an array or object, after checking an object's keys."""
    if isinstance(container, dict):
        for key in container:
            _check_text(key)
        return iter(container.values())
    return iter(container)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise BodyError("body: strings may not contain NUL characters (\\u0000)", 400)
    if _SURROGATE.search(text):
        raise BodyError("body: strings may not contain unpaired UTF-16 surrogates", 400)


def check_text(name: str, text: str) -> str:
    """Check a text taken from the URL (an id, a pipeline) like a body string."""
    try:
        _check_text(text)
    except BodyError as error:
        raise BodyError(error.message.replace("body:", f"{name}:"), 422) from None
    return text


def describe(value: Any) -> str:
    """A JSON type name for error messages ("an object", "a string" …)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
