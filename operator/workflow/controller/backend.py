"""buckets as the operator uses it: deposit, update and read one record.

A thin layer over the async buckets client that turns every failure into
``BackendError`` with a human sentence, so the handlers have one thing to
catch and one message to show in the ``BackendSynced`` condition.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from workflow.http.buckets import AsyncBuckets
from workflow.http.errors import BucketsError

#: Who the operator says it is when it deposits: such records are never withdrawn by others.
OWNER = "kubernetes-operator"


class BackendError(Exception):
    """buckets could not be reached or refused the request."""


class Backend:
    """The operator's connection to buckets."""

    def __init__(self, *, url: str, token: SecretStr | None, timeout: float) -> None:
        self._client = AsyncBuckets(baseurl=url, token=token, timeout=timeout)

    async def deposit(self, document: dict[str, Any]) -> None:
        """Record a Work under the id it carries (idempotent)."""
        try:
            await self._client.deposit([document], return_ids=True, owner=OWNER)
        except BucketsError as error:
            raise BackendError(str(error)) from error

    async def update(self, document: dict[str, Any]) -> None:
        """Overwrite the record with ``document``.

        A document without ``results`` (the resource holds only a truncated
        copy) keeps the results stored in buckets, which the runner sent.
        """
        try:
            if "results" not in document:
                stored = await self._client.get(document["id"])
                document = {**document, "results": (stored or {}).get("results")}
            await self._client.update([document])
        except BucketsError as error:
            raise BackendError(str(error)) from error

    async def results(self, work_id: str) -> Any:
        """The results stored for a Work."""
        try:
            document = await self._client.get(work_id)
        except BucketsError as error:
            raise BackendError(str(error)) from error
        return (document or {}).get("results")

    async def reachable(self) -> bool:
        """Whether buckets answers its version endpoint."""
        try:
            await self._client.info()
        except BucketsError:
            return False
        return True

    async def close(self) -> None:
        await self._client.aclose()
