"""Plain-JSON access to the Kubernetes API through the official Python client.

The process kubelet reads and writes whole Pod and Node objects. Going
through the client's generated models would drop every field the models do
not know yet (the client trails the server by a few minors), and a status
write built from such a model would erase them. This module keeps the
client's transport and kubeconfig handling but moves plain dicts, and adds a
list-then-watch loop that survives dropped connections and expired resource
versions.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.watch.watch import iter_resp_lines

log = logging.getLogger(__name__)

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class ApiError(Exception):
    """The apiserver answered with an error status."""

    def __init__(self, status: int, body: bytes | str, method: str, path: str) -> None:
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        try:
            details = json.loads(text)
        except ValueError:
            details = {}
        self.status = status
        self.reason: str = details.get("reason", "") if isinstance(details, dict) else ""
        self.message: str = details.get("message", text) if isinstance(details, dict) else text
        super().__init__(f"{method} {path}: HTTP {status} {self.reason}: {self.message}")


def load_client(kubeconfig: Path) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


class Api:
    """A few verbs over the official client's transport, with dicts in and out."""

    def __init__(self, kubeconfig: Path) -> None:
        self.client = load_client(kubeconfig)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = JSON,
        timeout: float = 30,
    ) -> dict[str, Any]:
        response = self._send(
            method, path, query=query, body=body, content_type=content_type, timeout=timeout
        )
        data = response.read()
        if not 200 <= response.status <= 299:
            raise ApiError(response.status, data, method, path)
        return json.loads(data) if data else {}

    def get(self, path: str, **query: Any) -> dict[str, Any]:
        return self.request("GET", path, query=query or None)

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None,
        body: Any,
        content_type: str,
        timeout: float | tuple[float, float],
    ) -> Any:
        headers = {"Accept": JSON, "Content-Type": content_type}
        params = [(key, value) for key, value in (query or {}).items() if value is not None]
        request = self.client.param_serialize(
            method=method,
            resource_path=path,
            query_params=params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        return self.client.call_api(*request, _request_timeout=timeout)

    def watch(
        self,
        path: str,
        *,
        resource_version: str,
        query: dict[str, Any] | None = None,
        timeout: int = 60,
    ) -> Iterator[dict[str, Any]]:
        """Yield watch events until the server closes the stream (at most ``timeout`` s)."""
        params = dict(query or {})
        params.update(
            watch="true",
            resourceVersion=resource_version,
            allowWatchBookmarks="true",
            timeoutSeconds=str(timeout),
        )
        response = self._send(
            "GET", path, query=params, body=None, content_type=JSON, timeout=(10, timeout + 30)
        )
        try:
            if not 200 <= response.status <= 299:
                raise ApiError(response.status, response.read(), "WATCH", path)
            for line in iter_resp_lines(response.response):
                if line:
                    yield json.loads(line)
        finally:
            response.response.close()
            response.response.release_conn()


class Informer(threading.Thread):
    """List, then watch, forever: feeds ``on_event(type, object)`` and never dies of an API error.

    After a (re)list the full set goes to ``on_sync(objects)`` so the consumer
    can notice objects that disappeared while the watch was down.
    """

    def __init__(
        self,
        api: Api,
        path: str,
        *,
        name: str,
        on_event: Callable[[str, dict[str, Any]], None],
        on_sync: Callable[[list[dict[str, Any]]], None],
        query: dict[str, Any] | None = None,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.api = api
        self.path = path
        self.query = query or {}
        self.on_event = on_event
        self.on_sync = on_sync
        self.stop_event = stop
        self.synced = threading.Event()

    def run(self) -> None:
        backoff = 0.5
        while not self.stop_event.is_set():
            try:
                self._list_and_watch()
                backoff = 0.5
            except Exception as error:
                log.warning("%s: %s; retrying in %.1f s", self.name, error, backoff)
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _list_and_watch(self) -> None:
        listing = self.api.request("GET", self.path, query=self.query or None, timeout=60)
        resource_version = listing["metadata"]["resourceVersion"]
        self.on_sync(listing.get("items") or [])
        self.synced.set()
        while not self.stop_event.is_set():
            for event in self.api.watch(
                self.path, resource_version=resource_version, query=self.query
            ):
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        log.info(
                            "%s: resource version %s expired; relisting",
                            self.name,
                            resource_version,
                        )
                        return
                    raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message')}")
                resource_version = obj.get("metadata", {}).get("resourceVersion", resource_version)
                if kind == "BOOKMARK":
                    continue
                self.on_event(kind or "", obj)
                if self.stop_event.is_set():
                    return


def wait_until(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.25) -> Any:
    """Poll ``predicate`` until it returns something truthy; return it, or None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
        except Exception:
            result = None
        if result:
            return result
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)
