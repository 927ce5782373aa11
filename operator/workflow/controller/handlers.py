"""The kopf handlers: thin glue between the cluster and the controller.

kopf watches Works, and the Jobs and Pods the operator made for them; it
keeps small summaries of the Jobs and Pods in two indices. Every Work event
goes to the controller (reconciler.py), which tracks the Works that need it
and looks at them with a few workers; every Job or Pod event asks for
another look at its Work. No handler does more than that, and kopf keeps no
task per Work.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from workflow.controller import resource
from workflow.controller.buckets_sync import BucketsSync
from workflow.controller.kube import Kube
from workflow.controller.observing import view_job, view_pod
from workflow.controller.reconciler import Controller, Runtime
from workflow.controller.settings import OperatorSettings

WORKS = (resource.GROUP, resource.VERSION, resource.PLURAL)
OWNED = {resource.WORK_UID_LABEL: kopf.PRESENT}


CONTROLLER: Controller | None = None


def controller() -> Controller:
    if CONTROLLER is None:
        raise RuntimeError("the operator has not started: no controller configured")
    return CONTROLLER


@kopf.on.startup()
async def configure(
    settings: kopf.OperatorSettings, logger: kopf.Logger, memo: kopf.Memo, **_: Any
) -> None:
    """Tune kopf once, and connect to the cluster and to buckets."""
    global CONTROLLER
    ours = OperatorSettings()
    settings.posting.enabled = False  # the controller posts the Events it means to post
    # kopf logs every handled watch event; the controller logs what it does instead.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.networking.error_backoffs = [1, 2, 5, 10]
    settings.scanning.disabled = True
    # kopf only hands events over (its handlers make no API calls), so it may handle
    # many objects at once; an idle per-object worker goes soon, and the Works are
    # listed in pages: a list of 10,000 Works parsed at once left the heap 90 MB
    # larger for good (freed, but too fragmented to return), pages of 500 left 16 MB.
    settings.queueing.worker_limit = 1024
    settings.queueing.idle_timeout = 0.05
    settings.watching.chunk_size = 500
    CONTROLLER = Controller(
        Runtime(
            settings=ours,
            kube=Kube(threads=ours.api_threads),
            buckets=BucketsSync(
                url=ours.buckets_url,
                token=ours.buckets_token,
                timeout=ours.buckets_timeout,
            ),
        ),
        workers=ours.workers,
    )
    CONTROLLER.start()
    # The namespaces kopf watches: ``-n`` on the command line, else the setting.
    watched = memo.get("namespaces", ours.namespaces)
    namespaces = ", ".join(watched) or "all namespaces"
    logger.info("watching Works in %s; buckets at %s", namespaces, ours.buckets_url)


@kopf.on.cleanup()
async def shutdown(**_: Any) -> None:
    """Close connections on the way out."""
    if CONTROLLER is not None:
        await CONTROLLER.stop()
        await CONTROLLER.rt.buckets.close()
        CONTROLLER.rt.kube.close()


@kopf.on.probe(id="buckets")
async def buckets_reachable(**_: Any) -> bool:
    """Liveness detail: whether buckets answered just now."""
    return await controller().rt.buckets.reachable()


# The index functions are coroutines so that kopf runs them on the event loop: a
# plain function would go through its thread pool on every Job and Pod event, which
# cost the operator more CPU than the function itself (profiled with 1,000 Works).
@kopf.index("batch", "v1", "jobs", labels=OWNED)
async def jobs_by_work(labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict[str, Any]:
    """Summaries of the Jobs of each Work, by Work uid."""
    return {labels[resource.WORK_UID_LABEL]: view_job(dict(body))}


@kopf.index("", "v1", "pods", labels=OWNED)
async def pods_by_work(labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict[str, Any]:
    """Summaries of the Pods of each Work, by Work uid."""
    return {labels[resource.WORK_UID_LABEL]: view_pod(dict(body))}


@kopf.on.event("batch", "v1", "jobs", labels=OWNED)
@kopf.on.event("", "v1", "pods", labels=OWNED)
async def child_changed(labels: kopf.Labels, **_: Any) -> None:
    """A Job or Pod of a Work changed: look at that Work again."""
    if CONTROLLER is not None:
        CONTROLLER.saw_child(labels.get(resource.WORK_UID_LABEL))


# kopf passes its indices by name, which its handler protocol cannot express.
@kopf.on.event(*WORKS)  # type: ignore[arg-type]
async def work_changed(
    type: str | None,  # kopf's name for the event type
    body: kopf.Body,
    jobs_by_work: kopf.Index[str, Any],
    pods_by_work: kopf.Index[str, Any],
    **_: Any,
) -> None:
    """A Work was listed, added, changed or deleted: hand it to the controller."""
    rt = controller()
    rt.jobs, rt.pods = jobs_by_work, pods_by_work
    rt.saw_work(type, dict(body))
