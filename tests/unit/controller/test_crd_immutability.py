"""The CRD freezes a started Work's spec with one CEL transition rule per field.

These check the generated rules; tests/integration/operator/test_gitops.py
checks that the real apiserver enforces them.
"""

from workflow.controller import crd, resource


def _root_rules():
    schema = crd.work_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["x-kubernetes-validations"]


def test_every_spec_field_but_run_id_and_ttl_has_its_own_frozen_rule():
    frozen = {
        rule["fieldPath"].removeprefix(".spec.")
        for rule in _root_rules()
        if "cannot change once the Work has started" in rule["message"]
    }
    fields = set(resource.WorkSpec.model_json_schema()["properties"])
    assert frozen == fields - {"runId", "ttlSecondsAfterFinished"}


def test_rules_read_the_old_status_so_they_only_apply_after_the_work_started():
    for rule in _root_rules():
        assert "oldSelf.status.phase != 'created'" in rule["rule"], rule
        assert rule["reason"] == "FieldValueForbidden"


def test_run_id_may_change_only_before_the_start_or_after_the_end():
    [rule] = [r for r in _root_rules() if r["fieldPath"] == ".spec.runId"]
    assert "oldSelf.status.phase in ['success', 'failure']" in rule["rule"]


def test_cel_reserved_words_are_escaped_as_kubernetes_requires():
    [rule] = [r for r in _root_rules() if r["fieldPath"] == ".spec.function"]
    assert "self.spec.__function__ == oldSelf.spec.__function__" in rule["rule"]
    assert crd.cel_property("pipeline") == "pipeline"
