"""HTTP clients of the workflow backends: today the buckets work queue.

``HTTPContext`` finds buckets from the workspace and the environment;
``Buckets`` and ``AsyncBuckets`` are the clients; the errors they raise form
the tree documented in ``workflow.http.errors``.
"""

from workflow.http.buckets import AsyncBuckets, Buckets
from workflow.http.context import HTTPContext
from workflow.http.errors import (
    BucketsError,
    ConfigurationError,
    Conflict,
    ConnectError,
    Forbidden,
    InvalidRequest,
    InvalidResponse,
    NotFound,
    ServerError,
    StatusError,
    TransportError,
    Unauthorized,
    Unreachable,
)
from workflow.http.retrying import Backoff, Replay

__all__ = [
    "AsyncBuckets",
    "Backoff",
    "Buckets",
    "BucketsError",
    "ConfigurationError",
    "Conflict",
    "ConnectError",
    "Forbidden",
    "HTTPContext",
    "InvalidRequest",
    "InvalidResponse",
    "NotFound",
    "Replay",
    "ServerError",
    "StatusError",
    "TransportError",
    "Unauthorized",
    "Unreachable",
]
