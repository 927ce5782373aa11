"""Request bodies and works: what is accepted, what is refused, and what the refusal says."""

from __future__ import annotations

import json
from typing import Any

import pytest

from workflow.buckets.bodies import MAX_DEPTH, BodyError, count_values, parse_json
from workflow.buckets.documents import new_id, prepare_deposit, validate_works
from workflow.definitions.work import WorkDocument

WORK = {"pipeline": "sample", "site": "local", "user": "ada", "command": ["true"]}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "body: is empty"),
        (b"{", "body: is not valid JSON"),
        (b"[1e999]", "body: number 1e999 is too large"),
        (b"[NaN]", "body: NaN is not valid JSON"),
        (b"[-Infinity]", "body: -Infinity is not valid JSON"),
        (b"\xff\xfe", "body: is not valid UTF-8"),
        (b'["a\\u0000b"]', "NUL characters"),
        (b'{"a\\u0000": 1}', "NUL characters"),
        (b'["\\ud800"]', "unpaired UTF-16 surrogates"),
        (b"[" + b"9" * 5000 + b"]", "body: is not acceptable JSON"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), f"nested more than {MAX_DEPTH} levels"),
        (b"[" * 100_000, "body:"),
    ],
)
def test_unusable_json_is_refused_with_400(raw: bytes, message: str) -> None:
    with pytest.raises(BodyError) as raised:
        parse_json(raw)
    assert raised.value.status == 400
    assert message in raised.value.message


def test_paired_surrogates_and_deep_but_allowed_nesting_are_accepted() -> None:
    assert parse_json(b'["\\ud83d\\ude00"]') == ["\U0001f600"]
    nested = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert parse_json(nested) is not None


def _values(value: Any) -> int:
    if isinstance(value, list):
        return 1 + sum(_values(item) for item in value)
    if isinstance(value, dict):
        return 1 + sum(_values(item) for item in value.values())
    return 1


TRICKY = [
    5,
    [],
    {},
    [[], {}, [[]], {"a": {}}],
    ["a,b", "[", "{", "]", '"', "\\", "\\,", 'x\\"y,['],
    {"k,[{": ["v", ",", {"": []}], "[": {"{": [1, 2.5, None, True, False]}},
    [" , ", [" [ ", {" { ": " } "}], [], {}],
]


@pytest.mark.parametrize("value", TRICKY)
@pytest.mark.parametrize("indent", [None, 2])
def test_values_are_counted_exactly_whatever_the_strings_and_spaces_hold(
    value: Any, indent: int | None
) -> None:
    raw = json.dumps(value, indent=indent).encode()
    values = _values(value)
    assert count_values(raw, limit=10**9) >= values  # far under the limit: a quick bound
    # At a limit under the quick bound the count reads past strings and spaces, exactly.
    assert count_values(raw, limit=values) == values
    for limit in range(values):
        assert count_values(raw, limit) > limit


def test_a_body_may_hold_exactly_the_value_limit_and_no_more() -> None:
    at_limit = json.dumps([[]] * 999).encode()  # 1000 values: the array and 999 in it
    assert len(parse_json(at_limit, max_values=1000)) == 999
    with pytest.raises(BodyError) as raised:
        parse_json(json.dumps([[]] * 1000).encode(), max_values=1000)
    assert raised.value.status == 413
    assert raised.value.message.startswith("body: holds more than 1000 JSON values")
    with pytest.raises(BodyError, match="holds more than 1000 JSON values"):
        parse_json(json.dumps(["a,[{"] * 1000).encode(), max_values=1000)
    assert len(parse_json(json.dumps(["a,[{"] * 999).encode(), max_values=1000)) == 999


def test_every_invalid_work_is_named_and_nothing_is_accepted() -> None:
    works: list[Any] = [
        WORK,
        {**WORK, "priority": 9},
        "not a work",
        {**WORK, "pipeline": "has space", "timeout": 0},
        {**WORK, "function": "m.f"},
    ]
    with pytest.raises(BodyError) as raised:
        validate_works(works, for_update=False)
    message = raised.value.message
    assert raised.value.status == 422
    assert "works[1].priority: Input should be less than or equal to 5" in message
    assert "works[2]: must be an object, not a string" in message
    assert "works[3].pipeline: String should match pattern" in message
    assert "works[3].timeout: Input should be greater than or equal to 1" in message
    assert "works[4]: Value error, function and command are mutually exclusive" in message
    assert "works[0]" not in message


@pytest.mark.parametrize("body", [{"works": []}, "x", 3, None])
def test_works_must_come_as_an_array(body: Any) -> None:
    with pytest.raises(BodyError, match="body: must be an array of works"):
        validate_works(body, for_update=False)


def test_an_update_needs_every_id() -> None:
    with pytest.raises(BodyError, match=r"works\[1\].id: is required to update a work"):
        validate_works([{**WORK, "id": "x"}, WORK], for_update=True)


@pytest.mark.parametrize("work_id", ["", "x" * 257])
def test_ids_chosen_by_clients_have_a_sane_length(work_id: str) -> None:
    with pytest.raises(BodyError, match=r"works\[0\].id: must be 1 to 256 characters"):
        validate_works([{**WORK, "id": work_id}], for_update=False)


def test_stored_works_ignore_the_servers_own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKFLOW_CONFIG_METRICS", "true")
    monkeypatch.setenv("WORKFLOW_CONFIG_ORGS", '["from-env"]')
    monkeypatch.setenv("WORKFLOW_CONFIG_ARCHIVE_LOGS", "delete")
    monkeypatch.setenv("WORKFLOW_NOTIFY_SLACK_CHANNEL_ID", "from-env")
    [stored, partial] = validate_works(
        [WORK, {**WORK, "config": {"archive": {"plots": "bypass"}}}], for_update=False
    )
    for document in (stored, partial):
        assert document["config"]["metrics"] is False
        assert document["config"]["orgs"] == ["chimefrb"]
        assert document["config"]["archive"]["logs"] == "move"
        assert document["notify"]["slack"]["channel_id"] is None
    assert partial["config"]["archive"]["plots"] == "bypass"


def test_deposits_are_validated_with_the_work_documents_fields_and_rules() -> None:
    [stored] = validate_works([WORK], for_update=False)
    assert stored.keys() == WorkDocument.model_validate(WORK).model_dump(mode="json").keys()
    with pytest.raises(BodyError, match="Extra inputs are not permitted"):
        validate_works([{**WORK, "notify": {"slack": {"typo": 1}}}], for_update=False)


def test_deposits_get_fresh_ids_unless_they_bring_their_own() -> None:
    documents = validate_works([WORK, {**WORK, "id": "chosen"}], for_update=False)
    ids = prepare_deposit(documents)
    assert ids[1] == "chosen"
    assert len(ids[0]) == 32 and int(ids[0], 16) >= 0
    assert [document["status"] for document in documents] == ["queued", "queued"]
    assert [document["id"] for document in documents] == ids


def test_new_ids_are_unique_and_ordered_by_time() -> None:
    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids)


def test_stored_documents_are_plain_json() -> None:
    [document] = validate_works([{**WORK, "parameters": {"big": 10**30}}], for_update=False)
    assert json.loads(json.dumps(document)) == document
