"""The sync buckets client on a mock transport: requests, replies, retries and errors."""

from __future__ import annotations

import time

import httpx
import pytest

from unit.http.mock_server import Script, answer
from workflow.definitions.work import WorkDocument
from workflow.http import (
    Buckets,
    ConfigurationError,
    ConnectError,
    Forbidden,
    InvalidRequest,
    InvalidResponse,
    NotFound,
    ServerError,
    StatusError,
    TransportError,
    Unauthorized,
)

FAKE_TOKEN = "tok-123-secret"  # a made-up token that must never leak
URL = "http://buckets.test:8004"


def client(script: Script, **options) -> Buckets:
    settings = {"baseurl": URL, "token": FAKE_TOKEN, "backoff": 0.001, "max_backoff": 0.002}
    return Buckets(transport=script.transport, **{**settings, **options})


# --------------------------------------------------------------------------- headers
def test_every_call_sends_the_token_as_x_access_token() -> None:
    script = Script([answer(body=True)], default=answer(body={"total": 0}))
    buckets = client(script)
    buckets.update([{"id": "1"}])
    buckets.status()
    assert [r.headers["x-access-token"] for r in script.requests] == [FAKE_TOKEN] * 2


def test_no_token_header_is_sent_without_a_token() -> None:
    script = Script(default=answer(body={}))
    client(script, token=None).status()
    assert "x-access-token" not in script.last.headers


def test_requests_ask_for_json_and_name_the_client() -> None:
    script = Script(default=answer(body={}))
    client(script).status()
    assert script.last.headers["accept"] == "application/json"
    assert script.last.headers["user-agent"].startswith("workflow/")


def test_the_token_is_not_in_the_clients_repr_or_info() -> None:
    script = Script(default=answer(body={"version": "1"}))
    buckets = client(script)
    assert FAKE_TOKEN not in repr(buckets)
    assert FAKE_TOKEN not in str(buckets.info())


def test_ping_sends_head_version_without_the_token() -> None:
    script = Script(default=httpx.Response(200))
    client(script).ping()
    assert (script.last.method, script.last.url.path) == ("HEAD", "/version")
    assert "x-access-token" not in script.last.headers


def test_ping_raises_when_the_server_does_not_answer_2xx() -> None:
    script = Script(default=httpx.Response(405))
    with pytest.raises(StatusError, match="405"):
        client(script).ping()


# --------------------------------------------------------------------------- base URL
def test_a_base_url_path_prefix_is_kept() -> None:
    script = Script(default=answer(body={}))
    client(script, baseurl="http://gateway.test/buckets/").status()
    assert str(script.last.url) == "http://gateway.test/buckets/status"


@pytest.mark.parametrize("url", ["", "buckets.test:8004", "ftp://buckets.test", "http://"])
def test_a_base_url_that_is_not_http_is_refused_with_a_sentence(url: str) -> None:
    with pytest.raises(ConfigurationError, match="base URL"):
        Buckets(baseurl=url)


# --------------------------------------------------------------------------- deposit
def test_deposit_posts_an_array_and_returns_the_ids() -> None:
    script = Script(default=answer(body=["a", "b"]))
    ids = client(script).deposit([{"pipeline": "p"}, {"pipeline": "q"}], return_ids=True)
    assert ids == ["a", "b"]
    assert script.last.method == "POST" and script.last.url.path == "/work"
    assert script.last.url.params.get_list("return_ids") == ["True"]
    assert script.body() == [{"pipeline": "p"}, {"pipeline": "q"}]


def test_deposit_without_return_ids_returns_true() -> None:
    script = Script(default=answer(body=True))
    assert client(script).deposit([{"pipeline": "p"}]) is True
    assert script.last.url.params["return_ids"] == "False"


def test_deposit_accepts_work_documents() -> None:
    script = Script(default=answer(body=["x"]))
    document = WorkDocument(pipeline="p", site="s", user="u", command=["true"])
    client(script).deposit([document], return_ids=True)
    assert script.body()[0]["command"] == ["true"]
    assert script.body()[0]["status"] == "created"


def test_deposit_can_name_an_owner() -> None:
    script = Script(default=answer(body=["x"]))
    client(script).deposit([{"id": "x"}], return_ids=True, owner="kubernetes-operator")
    assert script.last.url.params["owner"] == "kubernetes-operator"


def test_deposit_without_an_owner_sends_no_owner_parameter() -> None:
    # Without the parameter the server queues the works (the public contract).
    script = Script(default=answer(body=["x"]))
    client(script).deposit([{"id": "x"}], return_ids=True)
    assert "owner" not in script.last.url.params
    assert script.last.url.params["return_ids"] == "True"


def test_deposit_with_a_wrong_number_of_ids_is_an_invalid_response() -> None:
    script = Script(default=answer(body=["only-one"]))
    with pytest.raises(InvalidResponse, match="2 string ids"):
        client(script).deposit([{"pipeline": "p"}, {"pipeline": "q"}], return_ids=True)


def test_deposit_of_nothing_sends_nothing() -> None:
    script = Script()
    assert client(script).deposit([], return_ids=True) == []
    assert script.requests == []


# --------------------------------------------------------------------------- withdraw
def test_withdraw_sends_the_filter_document_of_the_contract() -> None:
    script = Script(default=answer(body={"id": "1", "pipeline": "a"}))
    work = client(script).withdraw(
        ["a", "b"],
        event=[1, 2],
        site="local",
        priority=4,
        user="ada",
        tags=["t"],
        parent="p",
    )
    assert work == {"id": "1", "pipeline": "a"}
    assert (script.last.method, script.last.url.path) == ("POST", "/work/withdraw")
    assert script.body() == {
        "pipeline": {"$in": ["a", "b"]},
        "site": "local",
        "priority": 4,
        "user": "ada",
        "event": {"$in": [1, 2]},
        "tags": {"$in": ["t"]},
        "config.parent": {"$in": ["p"]},
    }


def test_withdraw_sends_only_the_filters_given() -> None:
    script = Script(default=answer(body=None))
    client(script).withdraw("a", priority=0, tags=[], event=None)
    assert script.body() == {"pipeline": {"$in": ["a"]}}


@pytest.mark.parametrize(
    "reply", [answer(body=None), answer(body={}), httpx.Response(204), httpx.Response(200)]
)
def test_withdraw_returns_none_when_nothing_is_queued(reply: httpx.Response) -> None:
    assert client(Script(default=reply)).withdraw("a") is None


def test_withdraw_needs_a_pipeline() -> None:
    with pytest.raises(ValueError, match="at least one pipeline"):
        client(Script()).withdraw([])


# --------------------------------------------------------------------------- update, get
def test_update_puts_the_documents_and_returns_true() -> None:
    script = Script(default=answer(body=True))
    assert client(script).update([{"id": "1", "status": "success"}]) is True
    assert (script.last.method, script.last.url.path) == ("PUT", "/work")
    assert script.body() == [{"id": "1", "status": "success"}]


def test_update_of_a_work_without_id_is_refused_before_sending() -> None:
    script = Script()
    with pytest.raises(ValueError, match="positions \\[1\\]"):
        client(script).update([{"id": "1"}, {"id": None}])
    assert script.requests == []


def test_get_reads_one_work_by_id() -> None:
    script = Script(default=answer(body={"id": "a/b"}))
    assert client(script).get("a/b") == {"id": "a/b"}
    assert script.last.url.raw_path == b"/work/a%2Fb"


def test_get_of_an_unknown_id_raises_not_found_with_the_servers_words() -> None:
    script = Script(default=answer(404, {"detail": "no work with id 'zz'"}))
    with pytest.raises(NotFound) as caught:
        client(script).get("zz")
    assert caught.value.status_code == 404
    assert str(caught.value) == (
        f"GET {URL}/work/zz was answered with 404 Not Found: no work with id 'zz'"
    )


# --------------------------------------------------------------------------- delete
def test_delete_ids_sends_ids_as_repeated_query_parameters_in_chunks_of_100() -> None:
    script = Script(default=answer(body=True))
    ids = [f"id{i}" for i in range(250)]
    assert client(script).delete_ids(ids) is True
    chunks = [r.url.params.get_list("ids") for r in script.requests]
    assert [len(chunk) for chunk in chunks] == [100, 100, 50]
    assert [i for chunk in chunks for i in chunk] == ids
    assert all(r.method == "DELETE" and r.content == b"" for r in script.requests)


def test_delete_ids_of_nothing_sends_nothing_and_returns_false() -> None:
    script = Script()
    assert client(script).delete_ids([]) is False
    assert script.requests == []


def test_delete_many_views_the_matching_ids_then_deletes_them() -> None:
    script = Script([answer(body=[{"id": "1"}, {"id": "2"}]), answer(body=True)])
    deleted = client(script).delete_many(
        "p", status="failure", events=[3], tags=["t"], parent="x", force=True, limit=5
    )
    assert deleted is True
    assert script.paths() == ["POST /view", "DELETE /work"]
    assert script.body(0) == {
        "query": {
            "pipeline": "p",
            "status": "failure",
            "event": {"$in": [3]},
            "tags": {"$in": ["t"]},
            "config.parent": "x",
        },
        "projection": {"id": True, "_id": False},
        "skip": 0,
        "limit": 5,
    }
    assert script.requests[1].url.params.get_list("ids") == ["1", "2"]


def test_delete_many_without_force_deletes_nothing_and_says_how_many_would_go() -> None:
    script = Script([answer(body=[{"id": "1"}, {"id": "2"}])])
    with pytest.raises(ValueError, match="would delete 2 works"):
        client(script).delete_many("p")
    assert script.paths() == ["POST /view"]


def test_delete_many_with_no_match_returns_false_without_deleting() -> None:
    script = Script([answer(body=[])])
    assert client(script).delete_many("p", force=True) is False
    assert script.paths() == ["POST /view"]


# --------------------------------------------------------------------------- reads
def test_view_posts_query_projection_skip_and_limit() -> None:
    script = Script(default=answer(body=[{"id": "1"}]))
    found = client(script).view({"status": "queued"}, {"id": True}, skip=10, limit=None)
    assert found == [{"id": "1"}]
    assert script.body() == {
        "query": {"status": "queued"},
        "projection": {"id": True, "_id": False},
        "skip": 10,
        "limit": None,
    }


def test_view_does_not_change_the_callers_projection() -> None:
    projection = {"id": True}
    client(Script(default=answer(body=[]))).view({}, projection)
    assert projection == {"id": True}


def test_status_reads_overall_or_per_pipeline_counts() -> None:
    script = Script(default=answer(body={"total": 0}))
    buckets = client(script)
    buckets.status()
    buckets.status("sample")
    assert script.paths() == ["GET /status", "GET /status/details/sample"]


def test_pipelines_lists_names() -> None:
    script = Script(default=answer(body=["a", "b"]))
    assert client(script).pipelines() == ["a", "b"]
    assert script.paths() == ["GET /status/pipelines"]


def test_audit_runs_failed_expired_and_stale_in_that_order() -> None:
    script = Script([answer(body=1), answer(body=2), answer(body=3)])
    assert client(script).audit() == {"failed": 1, "expired": 2, "stale": 3}
    assert script.paths() == ["GET /audit/failed", "GET /audit/expired", "GET /audit/stale/7.0"]


def test_info_returns_client_settings_and_the_servers_version() -> None:
    script = Script(default=answer(body={"version": "9.9"}))
    info = client(script).info()
    assert info["server"] == {"version": "9.9"}
    assert info["client"]["baseurl"] == URL and info["client"]["authenticated"] is True


# --------------------------------------------------------------------------- replies
def test_a_reply_that_is_not_json_is_an_invalid_response_naming_the_url() -> None:
    script = Script(default=httpx.Response(200, text="<html>gateway</html>"))
    with pytest.raises(InvalidResponse, match=f"GET {URL}/status/pipelines .*not JSON"):
        client(script).pipelines()


def test_an_empty_reply_where_json_is_due_is_an_invalid_response() -> None:
    with pytest.raises(InvalidResponse, match="empty"):
        client(Script(default=httpx.Response(200))).update([{"id": "1"}])


def test_a_redirect_is_not_followed_so_the_token_stays_home() -> None:
    script = Script(default=httpx.Response(307, headers={"location": "http://elsewhere.test/"}))
    with pytest.raises(InvalidResponse, match=r"elsewhere\.test"):
        client(script).status()
    assert len(script.requests) == 1


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, InvalidRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, InvalidRequest),
        (422, InvalidRequest),
        (418, StatusError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_error_statuses_map_to_the_error_tree(status: int, kind: type[StatusError]) -> None:
    script = Script(default=answer(status, {"detail": "nope"}))
    with pytest.raises(kind) as caught:
        client(script, retries=0).status()
    assert caught.value.status_code == status and caught.value.detail == "nope"


def test_validation_details_are_quoted_field_by_field() -> None:
    detail = [{"loc": ["body", 0, "pipeline"], "msg": "String should match pattern"}]
    script = Script(default=answer(422, {"detail": detail}))
    with pytest.raises(InvalidRequest) as caught:
        client(script).deposit([{"pipeline": "bad name"}])
    assert str(caught.value).endswith(
        "was answered with 422 Unprocessable Entity: 0.pipeline: String should match pattern"
    )


def test_a_plain_text_error_body_is_quoted() -> None:
    script = Script(default=httpx.Response(502, text="upstream   went\naway"))
    with pytest.raises(ServerError, match="502 Bad Gateway: upstream went away"):
        client(script, retries=0).status()


def test_credentials_in_the_base_url_never_appear_in_messages() -> None:
    script = Script(default=answer(500, {"detail": "boom"}))
    buckets = client(script, baseurl="http://user:hunter2@buckets.test", retries=0)
    with pytest.raises(ServerError) as caught:
        buckets.status()
    assert "hunter2" not in str(caught.value) and "hunter2" not in repr(buckets)


def test_no_message_carries_the_token() -> None:
    script = Script(default=answer(401, {"detail": "unknown token"}))
    with pytest.raises(Unauthorized) as caught:
        client(script).status()
    assert FAKE_TOKEN not in str(caught.value) and FAKE_TOKEN not in repr(caught.value)


# --------------------------------------------------------------------------- retries
def refused() -> httpx.ConnectError:
    return httpx.ConnectError("[Errno 111] Connection refused")


def test_an_idempotent_call_is_retried_after_5xx_until_it_succeeds() -> None:
    script = Script([answer(503, {"detail": "busy"}), answer(500, {"detail": "oops"})])
    assert client(script).update([{"id": "1"}]) is True
    assert len(script.requests) == 3


def test_an_idempotent_call_is_retried_after_connection_errors() -> None:
    script = Script([refused(), httpx.ReadTimeout("slow")], default=answer(body={"total": 1}))
    assert client(script).status("p") == {"total": 1}
    assert len(script.requests) == 3


def test_retries_stop_after_the_configured_number_and_say_so() -> None:
    script = Script(default=answer(503, {"detail": "down for maintenance"}))
    with pytest.raises(ServerError) as caught:
        client(script, retries=2).pipelines()
    assert len(script.requests) == 3
    assert caught.value.attempts == 3
    assert str(caught.value).endswith("down for maintenance (gave up after 3 attempts)")


def test_retry_waits_are_bounded_by_the_maximum_backoff() -> None:
    script = Script(default=answer(503, {}))
    started = time.monotonic()
    with pytest.raises(ServerError):
        client(script, retries=4, backoff=0.05, max_backoff=0.06).pipelines()
    elapsed = time.monotonic() - started
    # four waits, each between 0.025 s and 0.06 s
    assert 4 * 0.025 <= elapsed < 4 * 0.06 + 1.0


def test_retries_stop_when_the_retry_budget_is_spent() -> None:
    script = Script(default=answer(503, {}))
    with pytest.raises(ServerError):
        client(script, retries=10, backoff=0.2, max_backoff=0.2, retry_budget=0.35).pipelines()
    # waits are 0.1 to 0.2 s, so at most 3 fit in 0.35 s: never all 10 retries
    assert 2 <= len(script.requests) <= 4


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_4xx_answers_are_never_retried(status: int) -> None:
    script = Script(default=answer(status, {"detail": "no"}))
    with pytest.raises(StatusError):
        client(script).update([{"id": "1"}])
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    "failure",
    [
        lambda: answer(503, {"detail": "busy"}),
        lambda: httpx.ReadTimeout("no reply"),
        lambda: httpx.RemoteProtocolError("closed"),
        refused,
    ],
    ids=["5xx", "read-timeout", "dropped", "refused"],
)
def test_withdraw_is_never_retried(failure) -> None:
    script = Script([failure()], default=answer(body={"id": "would-be-second-claim"}))
    with pytest.raises((ServerError, TransportError)):
        client(script).withdraw("p")
    assert len(script.requests) == 1


def test_a_deposit_without_ids_is_not_resent_once_it_reached_the_server() -> None:
    script = Script([httpx.ReadTimeout("no reply")], default=answer(body=["dup"]))
    with pytest.raises(TransportError) as caught:
        client(script).deposit([{"pipeline": "p", "id": None}], return_ids=True)
    assert not isinstance(caught.value, ConnectError)
    assert len(script.requests) == 1


def test_a_deposit_without_ids_is_not_resent_after_5xx() -> None:
    script = Script([answer(500, {"detail": "half done?"})], default=answer(body=["dup"]))
    with pytest.raises(ServerError):
        client(script).deposit([{"pipeline": "p"}], return_ids=True)
    assert len(script.requests) == 1


def test_a_deposit_without_ids_is_resent_when_the_connection_failed() -> None:
    script = Script([refused()], default=answer(body=["a"]))
    assert client(script).deposit([{"pipeline": "p"}], return_ids=True) == ["a"]
    assert len(script.requests) == 2


def test_a_deposit_whose_works_all_carry_ids_is_retried_like_any_idempotent_call() -> None:
    script = Script([httpx.ReadTimeout("no reply"), answer(502, {})], default=answer(body=["a"]))
    assert client(script).deposit([{"id": "a"}], return_ids=True) == ["a"]
    assert len(script.requests) == 3


def test_transport_errors_name_the_request_and_what_happened() -> None:
    script = Script(default=refused())
    with pytest.raises(ConnectError) as caught:
        client(script, retries=0).withdraw("p")
    assert str(caught.value) == (
        f"POST {URL}/work/withdraw could not complete: "
        "could not connect ([Errno 111] Connection refused)"
    )


def test_a_timeout_names_the_timeout() -> None:
    script = Script(default=httpx.ReadTimeout("timed out"))
    with pytest.raises(TransportError, match="no reply within 2 s"):
        client(script, timeout=2, retries=0).status()


def test_close_closes_the_connection_pool() -> None:
    buckets = client(Script(default=answer(body={})))
    with buckets:
        buckets.status()
    with pytest.raises(RuntimeError):
        buckets.status()
