"""One attempt of a Work (status, records in buckets, termination summary) and the serve loop."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest

from unit.http.mock_server import Script, answer
from workflow.definitions.work import WorkDocument
from workflow.http import Buckets
from workflow.runner import lifecycle
from workflow.runner.execute import Outcome
from workflow.runner.lifecycle import (
    TERMINATION_LIMIT_BYTES,
    Filters,
    InvalidWork,
    attempt,
    parse_work,
    serve,
    summarize,
    termination_log_path,
)


def document(**fields) -> WorkDocument:
    values = {"pipeline": "p", "site": "local", "user": "u", "command": ["echo", "hi"], **fields}
    return WorkDocument(**values)


def buckets_on(script: Script, **options) -> Buckets:
    return Buckets(baseurl="http://buckets.test", transport=script.transport, **options)


def puts(script: Script) -> list[dict]:
    return [json.loads(r.content)[0] for r in script.requests if r.method == "PUT"]


# --------------------------------------------------------------------------- attempt
def test_a_given_work_is_marked_running_then_recorded_with_its_outcome(tmp_path: Path) -> None:
    script = Script(default=answer(body=True))
    log = tmp_path / "termination-log"
    done = attempt(
        document(id="w1", status="queued"), buckets=buckets_on(script), termination_log=log
    )
    started, finished = puts(script)
    assert (started["status"], started["attempt"], started["stop"]) == ("running", 1, None)
    assert started["start"] is not None
    assert finished["status"] == "success"
    assert finished["results"]["stdout"] == "hi\n"
    assert finished["start"] <= finished["stop"]
    assert (done.recorded, done.exit_code, done.work.status) == (True, 0, "success")
    assert json.loads(log.read_text()) == done.summary


def test_a_withdrawn_work_is_only_recorded_once_it_ended() -> None:
    script = Script(default=answer(body=True))
    attempt(
        document(id="w1", status="running", attempt=1), buckets=buckets_on(script), withdrawn=True
    )
    assert [record["status"] for record in puts(script)] == ["success"]


def test_a_work_handed_over_as_running_is_still_recorded_as_started_with_its_attempt() -> None:
    # The operator's Job carries a document that already says running: buckets has
    # not heard of the attempt yet, so the runner records its start all the same.
    script = Script(default=answer(body=True))
    done = attempt(document(id="w1", status="running", attempt=3), buckets=buckets_on(script))
    assert done.work.attempt == 3
    started, finished = puts(script)
    assert (started["status"], started["attempt"], started["stop"]) == ("running", 3, None)
    assert started["start"] is not None
    assert (finished["status"], finished["attempt"]) == ("success", 3)


def test_every_record_the_runner_sends_is_guarded_by_attempt() -> None:
    script = Script(default=answer(body=True))
    attempt(document(id="w1", status="queued"), buckets=buckets_on(script))
    guards = [r.url.params.get_list("guard") for r in script.requests if r.method == "PUT"]
    assert guards == [["attempt"], ["attempt"]]


def test_a_start_record_buckets_refuses_as_stale_does_not_stop_the_attempt() -> None:
    script = Script(
        [answer(409, {"detail": "attempt: work 'w1' holds attempt 2 running"})],
        default=answer(body=True),
    )
    done = attempt(document(id="w1", status="running", attempt=1), buckets=buckets_on(script))
    assert done.outcome.succeeded and done.recorded is True


def test_a_work_without_id_is_run_but_not_recorded() -> None:
    script = Script(default=answer(body=True))
    done = attempt(document(), buckets=buckets_on(script))
    assert done.outcome.succeeded and done.recorded is None and script.requests == []


def test_a_failed_record_is_reported_but_does_not_fail_a_successful_work() -> None:
    script = Script(default=answer(500, {"detail": "database is down"}))
    done = attempt(document(id="w1", status="running"), buckets=buckets_on(script, retries=0))
    assert (done.recorded, done.exit_code, done.summary["recorded"]) == (False, 0, False)


def test_a_failed_work_exits_non_zero_and_is_recorded_as_failure() -> None:
    script = Script(default=answer(body=True))
    done = attempt(document(id="w1", command=["false"]), buckets=buckets_on(script))
    assert done.exit_code == 1
    assert puts(script)[-1]["status"] == "failure"
    assert (done.summary["status"], done.summary["reason"], done.summary["exitCode"]) == (
        "failure",
        "Error",
        1,
    )


def test_the_timeout_argument_replaces_the_works_own() -> None:
    done = attempt(document(command=["sleep", "30"], timeout=3600), timeout=1)
    assert done.outcome.reason == "DeadlineExceeded"


# --------------------------------------------------------------------------- summary
def outcome(**fields) -> Outcome:
    values = {
        "status": "success",
        "reason": "Completed",
        "message": "ok",
        "start": 1.0,
        "stop": 2.0,
    }
    return Outcome(**{**values, **fields})


def test_the_summary_holds_what_the_operator_reads() -> None:
    summary = summarize(
        document(id="w1", attempt=2),
        outcome(exit_code=0, results={"a": 1}, results_bytes=7, products=["x"], plots=["y"]),
        recorded=True,
    )
    assert summary == {
        "status": "success",
        "reason": "Completed",
        "message": "ok",
        "exitCode": 0,
        "attempt": 2,
        "start": 1.0,
        "stop": 2.0,
        "id": "w1",
        "pipeline": "p",
        "recorded": True,
        "results": {"a": 1},
        "products": ["x"],
        "plots": ["y"],
    }


def test_results_too_big_for_the_summary_are_replaced_by_their_size() -> None:
    results = {"blob": "z" * 5000}
    summary = summarize(document(), outcome(results=results, results_bytes=5011), None)
    assert "results" not in summary
    assert (summary["resultsTruncated"], summary["resultsBytes"]) == (True, 5011)
    assert len(json.dumps(summary, separators=(",", ":")).encode()) <= TERMINATION_LIMIT_BYTES


def test_the_summary_always_fits_a_termination_message() -> None:
    huge = outcome(
        status="failure",
        reason="Error",
        message="m" * 50_000,
        results={"r": "x" * 10_000},
        results_bytes=10_008,
        products=[f"/data/{i:05d}.h5" for i in range(2000)],
        plots=[f"/plots/{i:05d}.png" for i in range(2000)],
    )
    summary = summarize(document(), huge, None)
    assert len(json.dumps(summary, separators=(",", ":"), ensure_ascii=False).encode()) <= 4096
    assert summary["productsTruncated"] and summary["plotsTruncated"]
    assert summary["message"].startswith("mmm")


def test_a_failure_with_too_large_results_says_how_large() -> None:
    summary = summarize(
        document(),
        outcome(status="failure", reason="ResultsTooLarge", results_bytes=5_000_000),
        None,
    )
    assert summary["resultsBytes"] == 5_000_000 and summary["results"] is None


def test_the_termination_log_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert termination_log_path({"WORKFLOW_TERMINATION_LOG": str(tmp_path / "t")}) == tmp_path / "t"
    assert termination_log_path({"WORKFLOW_TERMINATION_LOG": ""}) is None
    default = tmp_path / "termination-log"
    monkeypatch.setattr(lifecycle, "DEFAULT_TERMINATION_LOG", default)
    assert termination_log_path({}) is None
    default.write_text("")
    assert termination_log_path({}) == default


def test_an_unwritable_termination_log_is_not_fatal(tmp_path: Path) -> None:
    done = attempt(document(), termination_log=tmp_path / "missing-folder" / "log")
    assert done.outcome.succeeded


# --------------------------------------------------------------------------- parse_work
def test_a_work_is_read_from_json_or_yaml() -> None:
    assert parse_work('{"pipeline": "p", "site": "s", "user": "u"}', "here").pipeline == "p"
    assert parse_work("pipeline: q\nsite: s\nuser: u\ncommand: [ls]\n", "here").command == ["ls"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[1, 2]", "must be a mapping of fields, not list"),
        ("pipeline: [unclosed", "neither JSON nor YAML"),
        ('{"pipeline": "bad name", "site": "s", "user": "u"}', "pipeline: String should match"),
        ('{"site": "s", "user": "u", "timeout": 0}', "pipeline: Field required; timeout:"),
    ],
)
def test_an_unreadable_work_is_refused_naming_source_and_fields(text: str, words: str) -> None:
    with pytest.raises(InvalidWork) as caught:
        parse_work(text, "work.json")
    assert str(caught.value).startswith("the work in work.json ")
    assert words in str(caught.value)


# --------------------------------------------------------------------------- serve
def queue_of(*records) -> Script:
    """buckets whose withdraws hand out ``records`` in order, then nothing."""
    pending = list(records)

    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/work/withdraw":
            item = pending.pop(0) if pending else None
            if isinstance(item, httpx.Response):
                return item
            return answer(body=item)
        return answer(body=True)

    return Script(default=reply)


def test_serve_spends_one_life_per_withdraw_whether_or_not_it_finds_work() -> None:
    script = queue_of(document(id="a").model_dump(mode="json"), None)
    tally = serve(buckets_on(script), Filters(pipelines=("p",)), lives=3, sleep=0)
    assert (tally.succeeded, tally.failed, tally.idle, tally.exit_code) == (1, 0, 2, 0)
    withdraws = [r for r in script.requests if r.url.path == "/work/withdraw"]
    assert len(withdraws) == 3


def test_serve_withdraws_with_the_filters() -> None:
    script = queue_of()
    filters = Filters(
        pipelines=("a", "b"),
        site="local",
        priority=5,
        user="u",
        tags=("t",),
        events=(1,),
        parents=("x",),
    )
    serve(buckets_on(script), filters, lives=1, sleep=0)
    assert json.loads(script.requests[0].content) == {
        "pipeline": {"$in": ["a", "b"]},
        "site": "local",
        "priority": 5,
        "user": "u",
        "event": {"$in": [1]},
        "tags": {"$in": ["t"]},
        "config.parent": {"$in": ["x"]},
    }


def test_serve_records_each_work_it_ran() -> None:
    script = queue_of(document(id="a", command=["false"]).model_dump(mode="json"))
    tally = serve(buckets_on(script), Filters(pipelines=("p",)), lives=1, sleep=0)
    assert tally.failed == 1 and tally.exit_code == 1
    assert puts(script)[0]["id"] == "a" and puts(script)[0]["status"] == "failure"


def test_serve_goes_on_after_a_withdraw_error_and_reports_it() -> None:
    script = queue_of(answer(500, {"detail": "hiccup"}), document(id="b").model_dump(mode="json"))
    errors: list[Exception] = []
    tally = serve(
        buckets_on(script), Filters(pipelines=("p",)), lives=2, sleep=0, on_error=errors.append
    )
    assert tally.succeeded == 1 and len(tally.errors) == 1 and "hiccup" in tally.errors[0]
    assert tally.exit_code == 1 and len(errors) == 1


def test_serve_fails_an_invalid_record_it_was_handed() -> None:
    script = queue_of({"id": "bad", "pipeline": "no spaces allowed", "site": "s", "user": "u"})
    tally = serve(buckets_on(script), Filters(pipelines=("p",)), lives=1, sleep=0)
    assert len(tally.errors) == 1 and "invalid work bad" in tally.errors[0]
    assert puts(script)[0]["status"] == "failure"


def test_serve_stops_when_asked() -> None:
    stop = threading.Event()
    stop.set()
    script = queue_of()
    tally = serve(buckets_on(script), Filters(pipelines=("p",)), lives=None, sleep=0, stop=stop)
    assert script.requests == [] and tally.exit_code == 0


def test_serve_forever_runs_until_stopped() -> None:
    stop = threading.Event()
    script = queue_of()
    seen: list[None] = []

    def idle() -> None:
        seen.append(None)
        if len(seen) == 3:
            stop.set()

    tally = serve(
        buckets_on(script), Filters(pipelines=("p",)), lives=None, sleep=0, stop=stop, on_idle=idle
    )
    assert tally.idle == 3


def test_a_runner_failure_is_recorded_as_the_works_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_, **__):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lifecycle, "execute", broken)
    script = Script(default=answer(body=True))
    done = attempt(document(id="w1", status="running"), buckets=buckets_on(script))
    assert (done.outcome.reason, done.exit_code) == ("Error", 1)
    assert "No space left on device" in done.outcome.message
    assert puts(script)[-1]["status"] == "failure"
