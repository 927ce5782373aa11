"""Request bodies read defensively: JSON that cannot hurt the server or the stores.

``json.loads`` accepts things a database cannot hold or a later step cannot
survive: ``NaN`` and ``Infinity``, numbers that overflow to infinity, lone
UTF-16 surrogates, NUL characters, and nesting deep enough to exhaust the
stack. ``parse_json`` turns each of them into a ``BodyError`` whose message
names the problem, so that no body makes the server answer 500.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: Deepest nesting of arrays and objects accepted in a request body.
MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


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


def parse_json(raw: bytes) -> Any:
    """Parse a JSON request body, rejecting what the service cannot store or compare."""
    if not raw.strip():
        raise BodyError("body: is empty; a JSON document is required", 400)
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
    """Reject deep nesting, NUL characters and lone surrogates anywhere in ``value``."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise BodyError(f"body: is nested more than {MAX_DEPTH} levels deep", 400)
            if isinstance(item, dict):
                for key, inner in item.items():
                    _check_text(key)
                    stack.append((inner, depth + 1))
            else:
                stack.extend((inner, depth + 1) for inner in item)


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
