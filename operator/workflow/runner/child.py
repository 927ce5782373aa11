"""The child process that calls a Work's function, so the runner can stop it at its deadline.

``workflow.runner.execute`` starts this file as a script with the path of a
request (JSON: function path, parameters, import path, results limit, reply
path). It imports the function, calls ``function(**parameters)``, checks what
came back and writes a reply (JSON) that the parent turns into an ``Outcome``.

It imports nothing from ``workflow`` and only the standard library before the
user's function, so it starts fast and behaves like the caller's interpreter:
``sys.path`` is set to the caller's before the function is imported. Its
environment is the runner's less the buckets token (``execute.child_environment``).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from typing import Any


def load(path: str) -> Any:
    """The object at dotted ``path`` (``package.module.function``, or deeper attributes)."""
    parts = path.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        raise LookupError(f"function {path!r} is not a dotted path like 'package.module.function'")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            target: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            # Only a missing module of the path itself means "try a shorter prefix";
            # a missing dependency of that module is a real import failure.
            missing = error.name or ""
            if not (module_name == missing or module_name.startswith(missing + ".")):
                raise
            continue
        for attribute in parts[split:]:
            try:
                target = getattr(target, attribute)
            except AttributeError:
                raise LookupError(
                    f"function {path!r} was not found: module {module_name!r} "
                    f"has no attribute {'.'.join(parts[split:])!r}"
                ) from None
        return target
    raise ModuleNotFoundError(f"no module named {parts[0]!r}", name=parts[0])


def outcome_of(value: Any) -> tuple[Any, Any, Any]:
    """(results, products, plots) from what a function returned; ValueError if unusable."""
    if value is None:
        return None, None, None
    if isinstance(value, dict):
        return value, None, None
    if isinstance(value, tuple):
        if len(value) > 3:
            raise ValueError(
                f"a returned tuple must be (results, products, plots); it has {len(value)} items"
            )
        results, products, plots = (*value, None, None, None)[:3]
        if results is not None and not isinstance(results, dict):
            raise ValueError(
                f"the results in a returned tuple must be a dict, not {type(results).__name__}"
            )
        for name, items in (("products", products), ("plots", plots)):
            if items is not None and not (
                isinstance(items, list) and all(isinstance(item, str) for item in items)
            ):
                raise ValueError(f"{name} must be a list of strings, not {items!r:.100}")
        return results, products, plots
    raise ValueError(
        "a function must return a dict of results, a tuple (results, products, plots) "
        f"or None, not {type(value).__name__}"
    )


def call(request: dict[str, Any]) -> dict[str, Any]:
    """Run the requested function and describe what happened, as a JSON-ready reply."""
    path = request["function"]
    try:
        function = load(path)
    except LookupError as error:
        return {"status": "failure", "reason": "FunctionNotFound", "message": str(error)}
    except Exception as error:  # the module itself failed to import
        if not isinstance(error, ModuleNotFoundError):
            traceback.print_exc()
        return {
            "status": "failure",
            "reason": "ImportError",
            "message": f"function {path!r} could not be imported: {type(error).__name__}: {error}",
        }
    if not callable(function):
        return {
            "status": "failure",
            "reason": "FunctionNotFound",
            "message": f"{path!r} is a {type(function).__name__}, not a function",
        }
    try:
        value = function(**(request.get("parameters") or {}))
    except Exception as error:
        traceback.print_exc()
        return {
            "status": "failure",
            "reason": "Error",
            "message": f"{path} raised {type(error).__name__}: {error}",
        }
    try:
        results, products, plots = outcome_of(value)
    except ValueError as error:
        return {"status": "failure", "reason": "InvalidResults", "message": f"{path}: {error}"}
    try:
        encoded = json.dumps(results, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        return {
            "status": "failure",
            "reason": "ResultsNotSerializable",
            "message": f"the results of {path} cannot be stored as JSON: {error}",
        }
    size = len(encoded.encode())
    limit = request["limit"]
    if results is not None and size > limit:
        return {
            "status": "failure",
            "reason": "ResultsTooLarge",
            "message": f"the results of {path} are {size} bytes of JSON, over the limit of "
            f"{limit} bytes; store large outputs as products",
            "resultsBytes": size,
        }
    return {
        "status": "success",
        "reason": "Completed",
        "message": f"{path} returned",
        "results": results,
        "products": products,
        "plots": plots,
        "resultsBytes": size if results is not None else None,
    }


def die_with_parent(parent: int) -> None:
    """On Linux, be killed when the runner dies, so no orphan outlives it."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the runner died before the line above
        os._exit(1)


def main(request_path: str) -> int:
    with open(request_path) as stream:
        request = json.load(stream)
    die_with_parent(request["parent"])
    sys.path[:] = request["path"]
    reply = call(request)
    temporary = request["reply"] + ".partial"
    with open(temporary, "w") as stream:
        json.dump(reply, stream, separators=(",", ":"))
    os.replace(temporary, request["reply"])
    return 0 if reply["status"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
