"""HTTPContext: where buckets is, which base URL answers, and how a Work uses it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from fixtures.workspace import write_workspace
from unit.http.mock_server import Script, answer
from workflow.definitions.work import Work
from workflow.http import ConfigurationError, HTTPContext, Unreachable

FAKE_TOKEN = "ctx-secret"  # a made-up token


def hosts(script: Script) -> list[str]:
    return [f"{r.method} {r.url.host}{r.url.path}" for r in script.requests]


def only_host(name: str):
    """Answer like buckets on host ``name``; refuse connections everywhere else."""

    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.host != name:
            raise httpx.ConnectError("[Errno 111] Connection refused")
        if request.method == "HEAD":
            return httpx.Response(200)
        return answer(body={"total": 0})

    return reply


def test_building_a_context_touches_no_network(workspace: Path) -> None:
    script = Script()
    HTTPContext(transport=script.transport)
    assert script.requests == []


def test_the_first_base_url_that_answers_head_version_is_used(
    workspace: Path, tmp_path: Path
) -> None:
    path = write_workspace(tmp_path / "ws.yml", ["http://down.test", "http://up.test/"])
    script = Script(default=only_host("up.test"))
    context = HTTPContext(workspace=path, transport=script.transport)
    assert context.buckets.status("p") == {"total": 0}
    assert context.buckets.baseurl == "http://up.test"
    assert hosts(script) == [
        "HEAD down.test/version",
        "HEAD up.test/version",
        "GET up.test/status/details/p",
    ]


def test_the_base_url_is_chosen_once(workspace: Path) -> None:
    script = Script(default=only_host("127.0.0.1"))
    context = HTTPContext(transport=script.transport)
    assert context.buckets is context.buckets
    assert sum(r.method == "HEAD" for r in script.requests) == 1


def test_when_no_base_url_answers_the_error_names_each_and_why(
    workspace: Path, tmp_path: Path
) -> None:
    path = write_workspace(tmp_path / "ws.yml", ["http://a.test", "http://b.test"])

    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a.test":
            raise httpx.ConnectError("[Errno 111] Connection refused")
        return httpx.Response(405, json={"detail": "Method Not Allowed"})

    context = HTTPContext(workspace=path, transport=Script(default=reply).transport)
    with pytest.raises(Unreachable) as caught:
        _ = context.buckets
    message = str(caught.value)
    assert "none of the 2 base URLs tried answered HEAD /version" in message
    assert (
        "http://a.test: HEAD http://a.test/version could not complete: could not connect" in message
    )
    assert "http://b.test: HEAD http://b.test/version was answered with 405" in message


def test_a_workspace_without_buckets_url_is_a_configuration_error(
    workspace: Path, tmp_path: Path
) -> None:
    path = tmp_path / "ws.yml"
    path.write_text("workspace: x\nsites: [local]\n")
    with pytest.raises(ConfigurationError, match="names no buckets base URL"):
        _ = HTTPContext(workspace=path, transport=Script().transport).buckets


def test_baseurl_from_the_environment_replaces_the_workspace(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKFLOW_HTTP_BASEURL", "http://first.test, http://second.test")
    script = Script(default=only_host("second.test"))
    context = HTTPContext(transport=script.transport)
    assert context.candidates() == ["http://first.test", "http://second.test"]
    assert context.buckets.baseurl == "http://second.test"


def test_with_a_baseurl_no_workspace_file_is_needed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WORKFLOW_WORKSPACE", raising=False)
    monkeypatch.setenv("WORKFLOW_HTTP_WORKSPACE", str(tmp_path / "absent.yml"))
    monkeypatch.setenv("WORKFLOW_HTTP_BASEURL", "http://only.test")
    assert HTTPContext().candidates() == ["http://only.test"]


def test_without_workspace_or_baseurl_the_error_says_what_to_do(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WORKFLOW_HTTP_WORKSPACE", str(tmp_path / "absent.yml"))
    with pytest.raises(ValidationError, match="set WORKFLOW_HTTP_BASEURL"):
        HTTPContext()


def test_workflow_http_workspace_is_preferred_to_workflow_workspace(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = write_workspace(tmp_path / "other.yml", "http://other.test")
    monkeypatch.setenv("WORKFLOW_HTTP_WORKSPACE", str(other))
    assert HTTPContext().workspace == other
    monkeypatch.delenv("WORKFLOW_HTTP_WORKSPACE")
    assert HTTPContext().workspace == workspace


@pytest.mark.parametrize(
    "variable", ["WORKFLOW_HTTP_TOKEN", "WORKFLOW_TOKEN", "GITHUB_TOKEN", "GITHUB_PAT"]
)
def test_the_token_comes_from_each_alias_and_is_sent_but_never_shown(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, FAKE_TOKEN)
    script = Script(default=only_host("127.0.0.1"))
    context = HTTPContext(transport=script.transport)
    context.buckets.status("p")
    assert FAKE_TOKEN not in repr(context) and FAKE_TOKEN not in repr(context.buckets)
    head, get = script.requests
    assert "x-access-token" not in head.headers
    assert get.headers["x-access-token"] == FAKE_TOKEN


def test_the_token_can_be_given_by_name_but_not_through_a_variable_called_token(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN", "unrelated")
    assert HTTPContext().token is None
    assert HTTPContext(token=FAKE_TOKEN).token.get_secret_value() == FAKE_TOKEN


@pytest.mark.parametrize("timeout", [0.4, 61])
def test_timeout_must_be_between_half_a_second_and_a_minute(
    workspace: Path, timeout: float
) -> None:
    with pytest.raises(ValidationError):
        HTTPContext(timeout=timeout)


def test_the_timeout_reaches_the_client(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKFLOW_HTTP_TIMEOUT", "2.5")
    context = HTTPContext(transport=Script(default=only_host("127.0.0.1")).transport)
    assert context.buckets.timeout == 2.5


# --------------------------------------------------------------------------- with Work
def test_a_work_deposits_its_payload_through_the_context(workspace: Path) -> None:
    script = Script([httpx.Response(200)], default=answer(body=["new-id"]))
    context = HTTPContext(transport=script.transport)
    work = Work(pipeline="p", site="local", user="u", command=["true"], token=FAKE_TOKEN)
    assert work.deposit(return_ids=True, http=context) == ["new-id"]
    assert script.body() == [work.payload]


def test_a_withdrawn_work_keeps_the_context_for_its_update(workspace: Path) -> None:
    record = Work(pipeline="p", site="local", user="u", id="w1", status="running").payload
    script = Script([httpx.Response(200), answer(body=record)], default=answer(body=True))
    context = HTTPContext(transport=script.transport)
    work = Work.withdraw("p", site="local", http=context)
    assert work is not None and work.id == "w1"
    work.status = "success"
    assert work.update() is True
    assert script.body()[0]["status"] == "success"
    assert hosts(script)[-1] == "PUT 127.0.0.1/work"


def test_withdraw_of_nothing_gives_none(workspace: Path) -> None:
    script = Script([httpx.Response(200)], default=answer(body=None))
    assert Work.withdraw("p", http=HTTPContext(transport=script.transport)) is None
