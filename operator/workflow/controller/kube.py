"""The few Kubernetes API calls the operator makes itself, run off the event loop.

kopf watches; creating and deleting Jobs, writing a Work's status and
finalizer, and posting its Events go through the official client, whose
calls block, so they run in a bounded thread pool.

Every call goes through the client's generic ``CustomObjectsApi`` (any
``/apis/<group>/<version>/...`` path): the typed ``BatchV1Api`` and
``CoreV1Api`` modules would add about 30 MB to the operator's memory, and
their answers would be turned into model objects only to be thrown away.
That is also why Events are ``events.k8s.io/v1`` Events (the same objects
``kubectl describe`` shows). Secrets (the per-attempt work tokens) are in
the core group, which that API cannot name; they go through the same
client's plain request methods instead.
"""

from __future__ import annotations

import asyncio
import json
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any

import kubernetes
from kubernetes.client import ApiClient, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from workflow.controller import resource

#: The controller named on the Events the operator posts.
EVENT_SOURCE = "workflow-operator"

JOBS = ("batch", "v1")
EVENTS = ("events.k8s.io", "v1")
WORKS = (resource.GROUP, resource.VERSION)


class JobRefused(Exception):
    """The apiserver refused a Job as invalid (400 or 422); the message says why."""


class JobTaken(Exception):
    """A Job of that name exists but is not this Work's (another owner): never adopted."""


def controller_uid(job: dict[str, Any]) -> str | None:
    """The uid of the object that controls ``job`` (its controller owner reference)."""
    for reference in (job.get("metadata") or {}).get("ownerReferences") or []:
        if reference.get("controller"):
            return str(reference.get("uid"))
    return None


def describe_owner(job: dict[str, Any]) -> str:
    """Who owns ``job``, for a message."""
    for reference in (job.get("metadata") or {}).get("ownerReferences") or []:
        if reference.get("controller"):
            return f"{reference.get('kind')} {reference.get('name')} (uid {reference.get('uid')})"
    return "no controller"


def _refusal(error: ApiException) -> str:
    """The apiserver's own sentence for a refused request."""
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except (TypeError, ValueError):
        return str(error.reason)


def api_error_line(error: ApiException) -> str:
    """One line for the log: the status code and the apiserver's sentence."""
    return f"{error.status} {_refusal(error)}"


def event_body(involved: dict[str, Any], kind: str, reason: str, message: str) -> dict[str, Any]:
    """An ``events.k8s.io/v1`` Event about ``involved`` (a Work)."""
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"generateName": f"{involved['name']}-", "namespace": involved["namespace"]},
        "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingController": EVENT_SOURCE,
        "reportingInstance": socket.gethostname()[:128],
        "action": reason,
        "reason": reason,
        "note": message[:1024],
        "type": kind,
        "regarding": involved,
    }


class Kube:
    """Async facade over the official client for Jobs, Works and Events."""

    def __init__(self, *, threads: int, api_client: ApiClient | None = None) -> None:
        if api_client is None:
            try:
                kubernetes.config.load_incluster_config()
            except kubernetes.config.ConfigException:
                kubernetes.config.load_kube_config()
            configuration = kubernetes.client.Configuration.get_default_copy()
            # One pooled connection per thread: with fewer (the default is 5 per core),
            # urllib3 discards a connection after most calls and the next call pays a
            # new TLS handshake ("Connection pool is full" warnings at 1,000 Works).
            configuration.connection_pool_maxsize = threads
            api_client = ApiClient(configuration)
        self._api = CustomObjectsApi(api_client)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube")

    async def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(function, *args, **kwargs))

    async def create_job(self, manifest: dict[str, Any]) -> bool:
        """Create the Job; False if this Work's Job of that name already exists.

        A Job of that name is this Work's only when its controller owner
        reference carries the Work's uid (the manifest's own): a Work deleted
        and made again under the same name has a new uid, and the Job of the
        earlier one, not yet collected, is never adopted (``JobTaken``).
        ``JobRefused`` when the apiserver finds the Job invalid.
        """
        meta = manifest["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        try:
            await self._call(
                self._api.create_namespaced_custom_object, *JOBS, namespace, "jobs", manifest
            )
        except ApiException as error:
            if error.status in (400, 422):
                raise JobRefused(_refusal(error)) from None
            if error.status != 409:
                raise
        else:
            return True
        try:
            existing = await self._call(
                self._api.get_namespaced_custom_object, *JOBS, namespace, "jobs", name
            )
        except ApiException as error:
            if error.status != 404:
                raise
            raise JobTaken(f"Job {name} existed a moment ago and is being deleted") from None
        if controller_uid(existing) != controller_uid(manifest):
            raise JobTaken(f"Job {name} exists and belongs to {describe_owner(existing)}")
        return False

    def _core(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """One request to the core API group (``/api/v1/...``); ApiException when refused."""
        client = self._api.api_client
        request = client.param_serialize(
            method=method,
            resource_path=path,
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = client.call_api(*request)
        response.read()
        return client.response_deserialize(response, {"200": "object", "201": "object"}).data

    async def put_secret(self, manifest: dict[str, Any]) -> None:
        """Create the Secret, or replace the one of that name (a repeated attempt start).

        Neither the manifest nor the answer is ever logged: it holds a token.
        """
        namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        try:
            await self._call(
                self._core, "POST", f"/api/v1/namespaces/{namespace}/secrets", manifest
            )
        except ApiException as error:
            if error.status != 409:
                raise
            await self._call(
                self._core, "PUT", f"/api/v1/namespaces/{namespace}/secrets/{name}", manifest
            )

    async def delete_job(self, namespace: str, name: str) -> None:
        """Delete the Job and, in the background, its pods; a missing Job is fine."""
        try:
            await self._call(
                self._api.delete_namespaced_custom_object, *JOBS, namespace, "jobs", name,
                propagation_policy="Background",
            )  # fmt: skip
        except ApiException as error:
            if error.status != 404:
                raise

    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch the Work's status subresource (a null removes a field); its new metadata."""
        work = await self._call(
            self._api.patch_namespaced_custom_object_status, *WORKS, namespace, resource.PLURAL,
            name, {"status": status},
        )  # fmt: skip
        return dict(work.get("metadata") or {})

    async def patch_work(self, namespace: str, name: str, operations: list[dict[str, Any]]) -> None:
        """JSON-patch the Work itself (its finalizers); a failed ``test`` operation raises 422."""
        await self._call(
            self._api.patch_namespaced_custom_object, *WORKS, namespace, resource.PLURAL, name,
            operations, _content_type="application/json-patch+json",
        )  # fmt: skip

    async def delete_work(self, namespace: str, name: str) -> None:
        """Delete a Work (after its ttlSecondsAfterFinished)."""
        try:
            await self._call(
                self._api.delete_namespaced_custom_object, *WORKS, namespace, resource.PLURAL, name
            )
        except ApiException as error:
            if error.status != 404:
                raise

    async def post_event(
        self, involved: dict[str, Any], kind: str, reason: str, message: str
    ) -> None:
        """Post an Event about ``involved`` (a Work), as ``kubectl describe`` shows them."""
        body = event_body(involved, kind, reason, message)
        await self._call(
            self._api.create_namespaced_custom_object, *EVENTS, involved["namespace"], "events",
            body,
        )  # fmt: skip

    def close(self) -> None:
        """Stop the thread pool."""
        self._pool.shutdown(wait=False, cancel_futures=True)
