"""buckets as the operator uses it: deposit, update and read one record.

A thin layer over the async buckets client that turns every failure into
``BucketsSyncError`` with a human sentence, so the handlers have one thing to
catch and one message to show in the ``BackendSynced`` condition (whose
name, public in the Work's status, predates this module's).
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from workflow.controller.records import merge_outcome
from workflow.http.buckets import AsyncBuckets
from workflow.http.errors import BucketsError, Conflict, NotFound

#: Who the operator says it is when it deposits: such records are never withdrawn by others.
OWNER = "kubernetes-operator"


class BucketsSyncError(Exception):
    """buckets could not be reached or refused the request."""


class BucketsSync:
    """The operator's connection to buckets."""

    def __init__(
        self,
        *,
        url: str,
        token: SecretStr | None,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = AsyncBuckets(baseurl=url, token=token, timeout=timeout, transport=transport)

    async def deposit(self, document: dict[str, Any]) -> None:
        """Record a Work under the id it carries (idempotent)."""
        try:
            await self._client.deposit([document], return_ids=True, owner=OWNER)
        except BucketsError as error:
            raise BucketsSyncError(str(error)) from error

    async def update(self, document: dict[str, Any], *, attempt_ended: bool = True) -> bool:
        """Write ``document`` over the record, keeping what only the runner could send.

        The stored record is read first and merged as ``merge_outcome`` says:
        results, products and plots the operator did not see are kept, and a
        state from before the attempt ended (``attempt_ended`` false) is not
        written over that attempt's recorded outcome. The write is guarded, so a
        record that moved further along meanwhile is kept too. False when
        nothing was written for either reason.
        """
        try:
            try:
                stored = await self._client.get(document["id"])
            except NotFound:
                stored = None
            merged = merge_outcome(document, stored, attempt_ended=attempt_ended)
            if merged is None:
                return False
            # Guarded: if the record moved past this document since it was read (a
            # later attempt's runner recorded its start), buckets keeps the newer one.
            await self._client.update([merged], guarded=True)
        except Conflict:
            return False
        except BucketsError as error:
            raise BucketsSyncError(str(error)) from error
        return True

    async def results(self, work_id: str) -> Any:
        """The results stored for a Work."""
        try:
            document = await self._client.get(work_id)
        except BucketsError as error:
            raise BucketsSyncError(str(error)) from error
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
