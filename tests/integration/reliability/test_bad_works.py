"""Bad Works: refused by the apiserver naming the field, or failed by the operator with a clear
reason, never a crash loop. (``tests/integration/operator/test_manifests.py`` has the first cases:
priority 9, retries 6, a pipeline with spaces, unknown fields ...; these are the others.)
"""

from __future__ import annotations

import json
import sys

import pytest
from reliability_helpers import HERE, buckets_record

from fixtures.operator import kubectl_apply

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

GOOD = {"pipeline": "bad-input", "site": "local", "user": "tester", "command": ["true"]}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"function": "pkg.fn", "command": ["true"]},
            "exactly one of spec.function and spec.command",
        ),
        ({"pipeline": None}, "spec.pipeline: Required value"),
        ({"site": None}, "spec.site: Required value"),
        ({"command": "echo hi"}, "spec.command: Invalid value"),
        ({"timeout": "soon"}, "spec.timeout: Invalid value"),
        ({"retries": -1}, "spec.retries: Invalid value"),
        ({"tags": "nightly"}, "spec.tags: Invalid value"),
        ({"event": ["one"]}, "spec.event[0]: Invalid value"),
        ({"env": {"A": "b"}}, 'unknown field "spec.env.A"'),
        ({"function": "pkg.fn", "command": None, "parameters": [1, 2]}, "spec.parameters"),
        ({"pipeline": "x" * 129}, "spec.pipeline: Too long"),
        ({"runId": "r" * 64}, "spec.runId: Too long"),
    ],
)
def test_a_malformed_work_is_refused_by_the_apiserver_naming_the_field(
    cluster, namespace, work_crd, change, expected, figures
):
    spec = {key: value for key, value in {**GOOD, **change}.items() if value is not None}
    result = kubectl_apply(cluster, namespace, spec)
    figures["bad inputs tried"] += 1
    assert result.returncode != 0, f"accepted: {spec}"
    assert expected in result.stderr, result.stderr


def test_two_megabytes_of_parameters_are_refused_by_the_apiserver(cluster, namespace, work_crd,
                                                                   figures):  # fmt: skip
    spec = {**GOOD, "command": None, "function": "workflow.examples.functions.mean",
            "parameters": {"values": [1], "padding": "x" * (2 * 1024 * 1024)}}  # fmt: skip
    result = kubectl_apply(cluster, namespace, {k: v for k, v in spec.items() if v is not None})
    figures["bad inputs tried"] += 1
    assert result.returncode != 0, "a Work with 2 MB of parameters was stored"
    # etcd refuses the object; no schema rule can weigh free-form parameters, so the
    # message names the size, not the field.
    assert "too large" in result.stderr.lower(), result.stderr


def run_bad(works, name: str, **spec) -> dict:
    works.apply(name, {**GOOD, "retries": 0, "timeout": 60, **spec})
    return works.wait_phase(name, "failure", "success", timeout=180)


def test_works_only_the_operator_can_judge_fail_with_a_clear_condition_and_no_crash_loop(
    operator_process, works, buckets_process, figures
):
    operator = operator_process(
        buckets_process.url, **buckets_process.operator_env, WORKFLOW_OPERATOR_SITES="local,lab"
    )
    env = [{"name": "PYTHONPATH", "value": str(HERE)}]
    nan_results = (
        "import json, os; open(os.environ['WORKFLOW_RESULTS_PATH'], 'w')"
        '.write(\'{"results": {"ratio": NaN}}\')'
    )
    cases = {
        # name: (spec, reason, words the message must hold)
        "elsewhere": ({"site": "elsewhere"}, "InvalidSpec", "spec.site 'elsewhere'"),
        "empty-function": ({"command": None, "function": ""}, "InvalidSpec", "nothing to run"),
        "bad-quantity": (
            {"resources": {"limits": {"cpu": "lots"}}}, "JobRefused", "quantities must match",
        ),
        "no-module": (
            {"command": None, "function": "no_such_module_anywhere.run"},
            "ImportError", "no_such_module_anywhere",
        ),
        "no-function": (
            {"command": None, "function": "workflow.examples.functions.no_such_function"},
            "FunctionNotFound", "no_such_function",
        ),
        "no-command": (
            {"command": ["no-such-command-anywhere", "--now"]}, "CommandNotFound",
            "'no-such-command-anywhere' was not found",
        ),
        "not-json-function": (
            {"command": None, "function": "reliability_functions.not_serializable", "env": env},
            "ResultsNotSerializable", "cannot be stored as JSON",
        ),
        "not-json-command": (
            {"command": [sys.executable, "-c", nan_results]},
            "ResultsNotSerializable", "cannot be stored as JSON",
        ),
    }  # fmt: skip
    for name, (spec, _, _) in cases.items():
        works.apply(name, {**GOOD, "retries": 0, "timeout": 60, **spec})
        works.created.append(name)
    for name, (_, reason, words) in cases.items():
        figures["bad inputs tried"] += 1
        work = works.wait_phase(name, "failure", "success", timeout=180)
        status = work["status"]
        assert (status["phase"], status["reason"]) == ("failure", reason), (name, status)
        said = status["history"][-1]["message"] if status["history"] else status["message"]
        assert words in said, (name, said)
        succeeded = next(c for c in status["conditions"] if c["type"] == "Succeeded")
        assert (succeeded["status"], succeeded["reason"]) == ("False", reason), succeeded
        assert reason in succeeded["message"] or words in succeeded["message"], succeeded
        if status.get("bucketsId"):
            stored = buckets_record(buckets_process.url, status["bucketsId"])
            assert stored is not None and stored["status"] == "failure", (name, stored)
    assert works.jobs("bad-quantity") == []
    assert operator.process.poll() is None, "the operator died"
    log = operator.log()
    assert "Traceback" not in log, log[log.index("Traceback") - 2000 :][:6000]
    print(
        "\n" + json.dumps({name: works.get(name)["status"]["message"] for name in cases}, indent=1)
    )
