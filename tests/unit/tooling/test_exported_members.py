"""Each public package exports exactly its public names, as httpx's own test checks.

A name added to a package without a place in ``__all__`` fails here, and so
does a name imported for the package's own use that would leak out as if it
were public. Submodules are not names of the package's surface; they are
left out.
"""

from __future__ import annotations
import __future__

import importlib
import inspect

import pytest

PACKAGES = [
    "workflow",
    "workflow.definitions",
    "workflow.http",
    "workflow.buckets",
    "workflow.buckets.routes",
    "workflow.buckets.stores",
    "workflow.runner",
    "workflow.controller",
    "workflow.cli",
]


def public_names(package: object) -> list[str]:
    return sorted(
        name
        for name, value in vars(package).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and not isinstance(value, __future__._Feature)
    )


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_exactly_the_public_names(name: str) -> None:
    package = importlib.import_module(name)
    exported = getattr(package, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert exported == sorted(set(exported)), f"{name}.__all__ is not sorted and unique"
    assert exported == public_names(package)
