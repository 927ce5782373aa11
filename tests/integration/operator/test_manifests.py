"""Bad manifests are refused by the apiserver itself, with the field named."""

from __future__ import annotations

import pytest

from fixtures.operator import kubectl_apply

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

GOOD = {"pipeline": "checks", "site": "local", "user": "tester", "command": ["true"]}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"priority": 9}, "spec.priority"),
        ({"retries": 6}, "spec.retries"),
        ({"timeout": 0}, "spec.timeout"),
        ({"pipeline": "has spaces"}, "spec.pipeline"),
        ({"function": "pkg.fn"}, "exactly one of spec.function and spec.command"),
        ({"command": None}, "exactly one of spec.function and spec.command"),
        ({"priority": "high"}, "spec.priority"),
        ({"user": None}, "spec.user"),
        ({"parameters": {"a": 1}}, "spec.parameters needs spec.function"),
        ({"colour": "blue"}, 'unknown field "spec.colour"'),
    ],
)
def test_kubectl_apply_refuses_a_bad_work_naming_the_field(
    cluster, namespace, work_crd, change, expected
):
    spec = {**GOOD, **change}
    spec = {key: value for key, value in spec.items() if value is not None}
    result = kubectl_apply(cluster, namespace, spec)
    assert result.returncode != 0, f"accepted: {spec}"
    assert expected in result.stderr, result.stderr


def test_kubectl_apply_accepts_a_good_work(cluster, namespace, work_crd):
    result = kubectl_apply(cluster, namespace, GOOD)
    assert result.returncode == 0, result.stderr
    assert "work.workflow.dev/bad created" in result.stdout
