"""The workspace file: which sites exist and where the backends live.

A workspace is a small YAML document, by default at
``~/.config/workflow/workspace.yml``::

    workspace: example
    sites: [local, testing]
    http:
      baseurls:
        buckets: http://127.0.0.1:8004
"""

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Baseurls(BaseModel):
    """Base URLs of the backends; each may be one URL or several to try in turn."""

    model_config = ConfigDict(extra="allow")

    buckets: str | list[str] | None = None

    def candidates(self, backend: str) -> list[str]:
        """The URLs to try for ``backend``, in order, without trailing slashes."""
        value = getattr(self, backend, None)
        if value is None:
            return []
        urls = [value] if isinstance(value, str) else list(value)
        return [url.rstrip("/") for url in urls]


class HTTPSection(BaseModel):
    model_config = ConfigDict(extra="allow")

    baseurls: Baseurls = Field(default_factory=Baseurls)


class Workspace(BaseModel):
    """The parts of a workspace file that this package reads; others are kept."""

    model_config = ConfigDict(extra="allow")

    workspace: str | None = None
    sites: list[str] = Field(default_factory=list)
    http: HTTPSection = Field(default_factory=HTTPSection)


class WorkspaceError(ValueError):
    """The workspace file is missing or malformed."""


def read_workspace(path: Path | str) -> Workspace:
    """Read and validate the workspace at ``path`` (cached by path and modification time)."""
    path = Path(path).expanduser()
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise WorkspaceError(f"workspace file {path} does not exist") from None
    return _read(path, mtime)


@lru_cache(maxsize=32)
def _read(path: Path, mtime: int) -> Workspace:
    try:
        data: Any = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise WorkspaceError(f"workspace file {path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise WorkspaceError(
            f"workspace file {path} must hold a mapping, not {type(data).__name__}"
        )
    try:
        return Workspace.model_validate(data)
    except ValidationError as error:
        raise WorkspaceError(f"workspace file {path} is invalid: {error}") from None
