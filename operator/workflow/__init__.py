"""workflow: run scientific and operational Work on Kubernetes.

The package holds the Work object users script against (`workflow.definitions`),
the HTTP client for the buckets work queue (`workflow.http`), the buckets
service itself (`workflow.buckets`), the executor that runs a Work
(`workflow.runner`) and the Kubernetes operator (`workflow.controller`).
"""

from pathlib import Path as _Path

__version__ = "0.1.0"

#: Folder of the user's local workflow configuration.
CONFIG_PATH: _Path = _Path.home() / ".config" / "workflow"
#: The workspace file read when no other is named (``WORKFLOW_WORKSPACE`` overrides it).
DEFAULT_WORKSPACE_PATH: _Path = CONFIG_PATH / "workspace.yml"
#: The variables named for workflow that may hold the buckets token, in order.
WORKFLOW_TOKEN_VARIABLES: tuple[str, ...] = ("WORKFLOW_HTTP_TOKEN", "WORKFLOW_TOKEN")
#: Every environment variable (and ``/run/secrets`` file name) that may hold the token, in order.
TOKEN_VARIABLES: tuple[str, ...] = (*WORKFLOW_TOKEN_VARIABLES, "GITHUB_TOKEN", "GITHUB_PAT")
#: Largest results mapping (serialized JSON bytes) a Work carries.
RESULTS_LIMIT_BYTES: int = 4 * 1024 * 1024

__all__ = [
    "CONFIG_PATH",
    "DEFAULT_WORKSPACE_PATH",
    "RESULTS_LIMIT_BYTES",
    "TOKEN_VARIABLES",
    "WORKFLOW_TOKEN_VARIABLES",
]
