"""The Work model: every validation rule, where values come from, and what is sent to buckets."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from workflow import RESULTS_LIMIT_BYTES
from workflow.definitions.work import Work, WorkDocument, document_path, json_size
from workflow.http.context import HTTPContext

#: A made-up token; tests check that it never leaks.
FAKE_TOKEN = "super-secret"


def make(**fields) -> Work:
    values = {"pipeline": "sample", "site": "local", "user": "ada", **fields}
    return Work(**values)


# --------------------------------------------------------------------------- pipeline
@pytest.mark.parametrize("name", ["a", "sample-pipeline", "ABC-123", "x" * 128])
def test_pipeline_accepts_letters_digits_and_hyphens_up_to_128(workspace: Path, name: str) -> None:
    assert make(pipeline=name).pipeline == name


@pytest.mark.parametrize(
    "name", ["", "with space", "under_score", "dot.ted", "slash/ed", "x" * 129]
)
def test_pipeline_rejects_other_characters_and_lengths(workspace: Path, name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make(pipeline=name)
    assert caught.value.errors()[0]["loc"] == ("pipeline",)


# --------------------------------------------------------------------------- what to run
def test_function_and_command_together_are_rejected_with_a_sentence(workspace: Path) -> None:
    with pytest.raises(ValidationError, match="function and command are mutually exclusive"):
        make(function="workflow.examples.functions.add", command=["echo", "hi"])


def test_function_alone_or_command_alone_is_accepted(workspace: Path) -> None:
    assert make(function="workflow.examples.functions.add").command is None
    assert make(command=["echo", "hi"]).function is None


def test_neither_function_nor_command_is_accepted_as_the_public_client_does(
    workspace: Path,
) -> None:
    work = make()
    assert work.function is None and work.command is None


# --------------------------------------------------------------------------- ranges
@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("timeout", [1, 3600, 259200], [0, -1, 259201]),
        ("retries", [0, 2, 5], [-1, 6]),
        ("priority", [1, 3, 5], [0, 6]),
        ("attempt", [0, 1, 7], [-1]),
    ],
)
def test_numeric_fields_accept_their_range_and_reject_the_rest(
    workspace: Path, field: str, good: list[int], bad: list[int]
) -> None:
    for value in good:
        assert getattr(make(**{field: value}), field) == value
    for value in bad:
        with pytest.raises(ValidationError) as caught:
            make(**{field: value})
        assert caught.value.errors()[0]["loc"] == (field,)


def test_defaults_match_the_public_client(workspace: Path) -> None:
    work = make()
    assert (work.timeout, work.retries, work.priority, work.attempt, work.status) == (
        3600,
        2,
        3,
        0,
        "created",
    )


@pytest.mark.parametrize("status", ["created", "queued", "running", "success", "failure"])
def test_status_accepts_the_five_lifecycle_values(workspace: Path, status: str) -> None:
    assert make(status=status).status == status


def test_status_rejects_anything_else(workspace: Path) -> None:
    with pytest.raises(ValidationError):
        make(status="done")


def test_assignment_is_validated(workspace: Path) -> None:
    work = make()
    with pytest.raises(ValidationError):
        work.priority = 9


# --------------------------------------------------------------------------- creation
def test_creation_defaults_to_now(workspace: Path) -> None:
    before = time.time()
    work = make()
    assert before <= work.creation <= time.time()


def test_creation_given_as_none_becomes_now(workspace: Path) -> None:
    before = time.time()
    assert make(creation=None).creation >= before


def test_creation_given_is_kept(workspace: Path) -> None:
    assert make(creation=1234.5).creation == 1234.5


# --------------------------------------------------------------------------- site
def test_strict_mode_rejects_a_site_missing_from_the_workspace_naming_both(workspace: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        make(site="mars")
    message = str(caught.value)
    assert "'mars'" in message and "local" in message and "testing" in message


def test_relaxed_mode_accepts_any_site(workspace: Path) -> None:
    work = make(site="mars", config={"strategy": "relaxed"})
    assert work.site == "mars"


def test_relaxed_mode_can_come_from_the_environment(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKFLOW_CONFIG_STRATEGY", "relaxed")
    assert make(site="mars").config.strategy == "relaxed"


def test_a_missing_workspace_file_is_an_error(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WORKFLOW_WORKSPACE", str(tmp_path / "absent.yml"))
    with pytest.raises(ValidationError) as caught:
        make()
    assert caught.value.errors()[0]["loc"] == ("workspace",)


def test_work_document_does_not_check_sites(workspace: Path) -> None:
    document = WorkDocument(pipeline="p", site="anywhere", user="u")
    assert document.site == "anywhere"


# --------------------------------------------------------------------------- sources
@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir()
    return folder


def test_default_is_used_when_nothing_else_says_otherwise(workspace: Path, secrets: Path) -> None:
    assert make(_secrets_dir=secrets).priority == 3


def test_secrets_beat_the_default(workspace: Path, secrets: Path) -> None:
    (secrets / "WORKFLOW_PRIORITY").write_text("4")
    assert make(_secrets_dir=secrets).priority == 4


def test_environment_beats_secrets(
    workspace: Path, secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (secrets / "WORKFLOW_PRIORITY").write_text("4")
    monkeypatch.setenv("WORKFLOW_PRIORITY", "5")
    assert make(_secrets_dir=secrets).priority == 5


def test_argument_beats_environment_and_secrets(
    workspace: Path, secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (secrets / "WORKFLOW_PRIORITY").write_text("4")
    monkeypatch.setenv("WORKFLOW_PRIORITY", "5")
    assert make(priority=2, _secrets_dir=secrets).priority == 2


def test_required_fields_can_come_from_the_environment(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKFLOW_PIPELINE", "from-env")
    monkeypatch.setenv("WORKFLOW_SITE", "testing")
    monkeypatch.setenv("WORKFLOW_USER", "grace")
    work = Work()
    assert (work.pipeline, work.site, work.user) == ("from-env", "testing", "grace")


def test_config_fields_come_from_workflow_config_variables(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKFLOW_CONFIG_PARENT", "parent-1")
    monkeypatch.setenv("WORKFLOW_CONFIG_METRICS", "true")
    monkeypatch.setenv("WORKFLOW_CONFIG_ARCHIVE_PRODUCTS", "move")
    monkeypatch.setenv("WORKFLOW_CONFIG_ARCHIVE_RESULTS", "false")
    config = make().config
    assert (config.parent, config.metrics) == ("parent-1", True)
    assert (config.archive.products, config.archive.results) == ("move", False)


def test_slack_fields_come_from_workflow_notify_slack_variables(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKFLOW_NOTIFY_SLACK_CHANNEL_ID", "C123")
    monkeypatch.setenv("WORKFLOW_NOTIFY_SLACK_MESSAGE", "done")
    slack = make().notify.slack
    assert (slack.channel_id, slack.message) == ("C123", "done")


def test_a_config_argument_beats_workflow_config_variables(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKFLOW_CONFIG_PARENT", "from-env")
    assert make(config={"parent": "from-argument"}).config.parent == "from-argument"


# --------------------------------------------------------------------------- token
@pytest.mark.parametrize(
    "variable", ["WORKFLOW_HTTP_TOKEN", "WORKFLOW_TOKEN", "GITHUB_TOKEN", "GITHUB_PAT"]
)
def test_token_is_read_from_each_alias(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "secret-value")
    assert make().token.get_secret_value() == "secret-value"


def test_token_aliases_are_read_in_order(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_PAT", "fourth")
    monkeypatch.setenv("WORKFLOW_TOKEN", "second")
    assert make().token.get_secret_value() == "second"


def test_token_can_be_given_as_an_argument(workspace: Path) -> None:
    assert make(token=FAKE_TOKEN).token.get_secret_value() == FAKE_TOKEN


def test_token_is_read_from_a_secret_file(workspace: Path, secrets: Path) -> None:
    (secrets / "WORKFLOW_TOKEN").write_text("from-file")
    assert make(_secrets_dir=secrets).token.get_secret_value() == "from-file"


def test_a_variable_merely_called_token_is_not_taken_as_the_token(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN", "unrelated")
    assert make().token is None


def test_token_is_never_shown_or_sent(workspace: Path) -> None:
    work = make(token=FAKE_TOKEN)
    assert FAKE_TOKEN not in repr(work)
    assert FAKE_TOKEN not in str(work)
    assert FAKE_TOKEN not in json.dumps(work.payload)
    assert FAKE_TOKEN not in work.model_dump_json()


# --------------------------------------------------------------------------- payload
def test_payload_leaves_out_workspace_token_http_and_strategy(workspace: Path) -> None:
    context = HTTPContext(baseurl="http://buckets.test")
    work = make(token=FAKE_TOKEN, http=context, config={"strategy": "relaxed"})
    assert work.http is context
    payload = work.payload
    assert not {"workspace", "token", "http"} & set(payload)
    assert "strategy" not in payload["config"]


def test_payload_has_every_field_of_the_wire_document(workspace: Path) -> None:
    assert set(make().payload) == set(WorkDocument.model_fields)


def test_payload_is_json(workspace: Path) -> None:
    payload = make(parameters={"values": [1, 2]}, tags=["a"], event=[7]).payload
    assert json.loads(json.dumps(payload)) == payload


# --------------------------------------------------------------------------- results
def test_results_within_the_limit_are_kept(workspace: Path) -> None:
    results = {"blob": "x" * (RESULTS_LIMIT_BYTES - 100)}
    assert json_size(results) <= RESULTS_LIMIT_BYTES
    assert make(results=results).results == results


def test_results_over_4_mib_are_dropped_with_a_warning_naming_their_size(workspace: Path) -> None:
    results = {"blob": "x" * RESULTS_LIMIT_BYTES}
    size = json_size(results)
    with pytest.warns(UserWarning, match=f"{size} bytes"):
        work = make(results=results)
    assert work.results is None


def test_results_assigned_over_the_limit_are_dropped_too(workspace: Path) -> None:
    work = make()
    with pytest.warns(UserWarning, match="over the"):
        work.results = {"blob": "y" * (RESULTS_LIMIT_BYTES + 1)}
    assert work.results is None


def test_results_over_4_mib_in_a_stored_record_are_sent_back_unchanged(workspace: Path) -> None:
    big = {"blob": "x" * RESULTS_LIMIT_BYTES}
    record = {**make(id="w1", status="success").payload, "results": big}
    with pytest.warns(UserWarning, match="update\\(\\) sends them back unchanged"):
        work = Work.from_dict(record)
    assert work.results is None
    assert work.payload["results"] == big
    work.status = "failure"
    assert work.payload["results"] == big


def test_results_set_anew_replace_the_withheld_ones(workspace: Path) -> None:
    record = {**make(id="w1").payload, "results": {"blob": "x" * RESULTS_LIMIT_BYTES}}
    with pytest.warns(UserWarning):
        work = Work.from_dict(record)
    work.results = {"small": 1}
    assert work.payload["results"] == {"small": 1}
    work.results = None
    assert work.payload["results"] is None


# --------------------------------------------------------------------------- http
def test_http_is_never_read_from_the_environment(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKFLOW_HTTP", "x")
    assert make().http is None


def test_http_refuses_anything_but_an_http_context_naming_the_field(workspace: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        make(http="x")
    assert caught.value.errors()[0]["loc"] == ("http",)
    assert "HTTPContext" in str(caught.value)


# --------------------------------------------------------------------------- round trips
def test_from_dict_round_trips_the_payload(workspace: Path) -> None:
    work = make(
        function="workflow.examples.functions.add",
        parameters={"a": 1, "b": 2},
        tags=["t"],
        event=[1, 2],
        id="abc",
        status="queued",
        config={"parent": "p"},
        notify={"slack": {"channel_id": "C1"}},
    )
    assert Work.from_dict(work.payload).payload == work.payload


def test_from_json_round_trips_the_payload(workspace: Path) -> None:
    work = make(command=["echo", "hi"], results={"a": 1}, products=["p"], plots=["q"])
    assert Work.from_json(json.dumps(work.payload)).payload == work.payload


def test_from_dict_ignores_unknown_top_level_keys_such_as_mongo_ids(workspace: Path) -> None:
    payload = {**make().payload, "_id": "507f1f77bcf86cd799439011"}
    assert "_id" not in Work.from_dict(payload).payload


def test_from_dict_rejects_unknown_slack_keys(workspace: Path) -> None:
    payload = make().payload
    payload["notify"]["slack"]["chanel_id"] = "typo"
    with pytest.raises(ValidationError):
        Work.from_dict(payload)


def test_from_dict_rejects_a_non_string_id(workspace: Path) -> None:
    with pytest.raises(ValidationError):
        Work.from_dict({**make().payload, "id": 12})


def test_document_path_reads_yaml_without_workspace_checks(tmp_path: Path) -> None:
    path = tmp_path / "work.yaml"
    path.write_text(
        yaml.safe_dump({"pipeline": "p", "site": "far", "user": "u", "command": ["true"]})
    )
    assert document_path(path).site == "far"


def test_a_work_document_reads_nothing_but_the_mapping(workspace, monkeypatch):
    """Servers and the operator validate documents: their own environment must not leak in."""
    from workflow.definitions.work import WorkDocument

    monkeypatch.setenv("WORKFLOW_CONFIG_METRICS", "true")
    monkeypatch.setenv("WORKFLOW_CONFIG_ARCHIVE_LOGS", "delete")
    monkeypatch.setenv("WORKFLOW_NOTIFY_SLACK_CHANNEL_ID", "C1")
    document = WorkDocument.model_validate({"pipeline": "p", "site": "local", "user": "u"})
    assert document.config.metrics is False
    assert document.config.archive.logs == "move"
    assert document.notify.slack.channel_id is None
    work = Work(pipeline="p", site="local", user="u")
    assert work.config.metrics is True
    assert work.config.archive.logs == "delete"
    assert work.notify.slack.channel_id == "C1"
