"""The few Kubernetes API calls the operator makes itself, run off the event loop.

kopf watches and posts Events; creating Jobs and writing a Work's status go
through the official client, whose calls block, so they run in a bounded
thread pool.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import kubernetes
from kubernetes.client import ApiClient, BatchV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from workflow.controller import resource


class JobRefused(Exception):
    """The apiserver refused a Job as invalid (400 or 422); the message says why."""


def _refusal(error: ApiException) -> str:
    """The apiserver's own sentence for a refused request."""
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except (TypeError, ValueError):
        return str(error.reason)


class Kube:
    """Async facade over the official client for Jobs and Work status."""

    def __init__(self, *, threads: int, api_client: ApiClient | None = None) -> None:
        if api_client is None:
            try:
                kubernetes.config.load_incluster_config()
            except kubernetes.config.ConfigException:
                kubernetes.config.load_kube_config()
            api_client = ApiClient()
        self._batch = BatchV1Api(api_client)
        self._custom = CustomObjectsApi(api_client)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube")

    async def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(function, *args, **kwargs))

    async def create_job(self, manifest: dict[str, Any]) -> bool:
        """Create the Job; False if a Job of that name already exists (nothing is created twice).

        ``JobRefused`` when the apiserver finds the Job invalid.
        """
        namespace = manifest["metadata"]["namespace"]
        try:
            await self._call(self._batch.create_namespaced_job, namespace, manifest)
        except ApiException as error:
            if error.status == 409:
                return False
            if error.status in (400, 422):
                raise JobRefused(_refusal(error)) from None
            raise
        return True

    async def delete_job(self, namespace: str, name: str) -> None:
        """Delete the Job and, in the background, its pods; a missing Job is fine."""
        try:
            await self._call(
                self._batch.delete_namespaced_job, name, namespace, propagation_policy="Background"
            )
        except ApiException as error:
            if error.status != 404:
                raise

    async def job_exists(self, namespace: str, name: str) -> bool:
        """Whether the Job exists, asked of the apiserver rather than the watch cache."""
        try:
            await self._call(self._batch.read_namespaced_job, name, namespace)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge-patch the Work's status subresource (a null removes a field)."""
        await self._call(
            self._custom.patch_namespaced_custom_object_status,
            resource.GROUP,
            resource.VERSION,
            namespace,
            resource.PLURAL,
            name,
            {"status": status},
        )

    async def delete_work(self, namespace: str, name: str) -> None:
        """Delete a Work (after its ttlSecondsAfterFinished)."""
        try:
            await self._call(
                self._custom.delete_namespaced_custom_object,
                resource.GROUP,
                resource.VERSION,
                namespace,
                resource.PLURAL,
                name,
            )
        except ApiException as error:
            if error.status != 404:
                raise

    def close(self) -> None:
        """Stop the thread pool."""
        self._pool.shutdown(wait=False, cancel_futures=True)
