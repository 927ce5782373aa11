"""Helpers for the buckets API tests: a valid work, and deposit/withdraw shortcuts."""

from __future__ import annotations

import time
from typing import Any

import httpx


def work(**fields: Any) -> dict[str, Any]:
    """A valid work payload as the public client sends it (status "created", no id)."""
    payload: dict[str, Any] = {
        "pipeline": "sample",
        "site": "local",
        "user": "ada",
        "command": ["true"],
        "status": "created",
        "creation": time.time(),
    }
    payload.update(fields)
    return payload


def deposit(client: httpx.Client, *works: dict[str, Any]) -> list[str]:
    """Deposit ``works`` and return their ids."""
    reply = client.post("/work", params={"return_ids": "True"}, json=list(works))
    assert reply.status_code == 200, reply.text
    return reply.json()


def withdraw(client: httpx.Client, **query: Any) -> dict[str, Any] | None:
    """Withdraw with a filter; ``pipeline`` becomes ``{"$in": [...]}`` as the client sends it."""
    if isinstance(query.get("pipeline"), str):
        query["pipeline"] = {"$in": [query["pipeline"]]}
    reply = client.post("/work/withdraw", json=query)
    assert reply.status_code == 200, reply.text
    return reply.json()


def view(client: httpx.Client, query: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
    reply = client.post("/view", json={"query": query, **options})
    assert reply.status_code == 200, reply.text
    return reply.json()


def stored(client: httpx.Client, work_id: str) -> dict[str, Any]:
    reply = client.get(f"/work/{work_id}")
    assert reply.status_code == 200, reply.text
    return reply.json()
