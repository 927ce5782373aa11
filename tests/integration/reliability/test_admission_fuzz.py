"""Generated Work specs against the chart's admission policy on the real apiserver.

hypothesis builds Work specs from the fields the policy judges - env value
sources, tokenSecretRef, serviceAccountName, image, resources, tolerations,
nodeSelector - mixing names the requester may and may not use, images
beside and inside the allowlist (look-alike prefixes too), quantities on both
sides of the ceiling and some that are no quantity at all. Each spec is sent
as a dry-run create by a user whose RBAC allows a few names only; the
apiserver's decision must be the one ``expected_refusals`` (the rules in
plain Python) gives: nothing it refuses is admitted, nothing it admits is
refused, and a refusal names one of the fields at fault. Bounded by
``WORKFLOW_FUZZ_EXAMPLES`` (default 150); derandomized, so a failure repeats.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kubernetes import client

from fixtures.admission import (
    WORK_CREATOR_RULES,
    Limits,
    Rights,
    as_user,
    expected_refusals,
    grant,
    install_policy,
    policy_documents,
    refusal,
    remove_policy,
)
from fixtures.helm import CHART, find_helm, in_ci

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

EXAMPLES = int(os.environ.get("WORKFLOW_FUZZ_EXAMPLES", "150"))
RIGHTS = Rights(secrets={"s-ok"}, config_maps={"c-ok"}, service_accounts={"sa-ok"})
VALUES = (
    "--set-json", 'admission.allowedImagePrefixes=["registry.example.org/","ghcr.io/org/"]',
    "--set-json", 'admission.maxResources={"cpu":"2","memory":"1Gi","ephemeral-storage":null}',
    "--set-json", 'admission.allowedTolerationKeys=["dedicated"]',
    "--set-json", 'admission.allowedNodeSelectorKeys=["kubernetes.io/arch"]',
)  # fmt: skip
BASE = {"pipeline": "fuzz", "site": "local", "user": "fuzzer", "command": ["true"]}

names = st.sampled_from(["s-ok", "s-no", "c-ok", "c-no", ""])
key_ref = st.fixed_dictionaries({"key": st.just("k")}, optional={"name": names})
sources = st.dictionaries(
    st.sampled_from(
        ["secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef", "fileKeyRef"]
    ),
    st.one_of(
        key_ref,
        st.just({"fieldPath": "metadata.name"}),
        st.just({"resource": "limits.cpu"}),
    ),
    max_size=2,
)
env_var = st.one_of(
    st.fixed_dictionaries({"name": st.sampled_from(["A", "B", "C"]), "value": st.just("v")}),
    st.fixed_dictionaries({"name": st.sampled_from(["A", "B", "C"]), "valueFrom": sources}),
)
quantity = st.sampled_from(["1", "2", "2001m", "500m", "0.5", "1Gi", "1025Mi", "3", "abc", "1k"])
resource_map = st.dictionaries(
    st.sampled_from(["cpu", "memory", "nvidia.com/gpu", "ephemeral-storage"]), quantity, max_size=3
)
toleration = st.fixed_dictionaries(
    {"operator": st.sampled_from(["Exists", "Equal"])},
    optional={"key": st.sampled_from(["dedicated", "gpu", "", "node-role.kubernetes.io/master"])},
)  # fmt: skip
specs = st.fixed_dictionaries(
    {},
    optional={
        "env": st.lists(env_var, max_size=4),
        "tokenSecretRef": st.fixed_dictionaries({"name": st.sampled_from(["s-ok", "s-no"])}),
        "serviceAccountName": st.sampled_from(["sa-ok", "sa-no", "default"]),
        "image": st.sampled_from([
            "registry.example.org/team/job:1", "registry.example.org.evil.com/x:1",
            "ghcr.io/org/y@sha256:" + "a" * 64, "ghcr.io/orgx/y:1", "evil/x", "ghcr.io/org",
        ]),
        "resources": st.fixed_dictionaries(
            {}, optional={"requests": resource_map, "limits": resource_map}
        ),
        "tolerations": st.lists(toleration, max_size=3),
        "nodeSelector": st.dictionaries(
            st.sampled_from(["kubernetes.io/arch", "kubernetes.io/hostname"]),
            st.just("x"), max_size=2,
        ),
    },
)  # fmt: skip


@pytest.fixture
def fuzz_policy(cluster, kube, namespace, work_crd) -> Iterator[Limits]:
    helm = find_helm()
    if helm is None:
        message = "helm is not installed and hack/ensure-helm.sh could not install it"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    documents = policy_documents(
        helm,
        str(CHART),
        "--set",
        f"operator.namespaces={{{namespace}}}",
        *VALUES,
        namespace="workflow",
        release=f"fuzz-{namespace[-6:]}",
    )
    install_policy(cluster, documents, namespace)
    yield Limits.from_policy(documents)
    remove_policy(cluster, documents)


@pytest.fixture
def fuzzer(cluster, kube, namespace) -> Iterator[client.ApiClient]:
    grant(
        kube,
        namespace,
        "fuzzer",
        "fuzzer",
        [
            *WORK_CREATOR_RULES,
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
             "resourceNames": sorted(RIGHTS.secrets)},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
             "resourceNames": sorted(RIGHTS.config_maps)},
            {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["use"],
             "resourceNames": sorted(RIGHTS.service_accounts)},
        ],
    )  # fmt: skip
    api = as_user(cluster, "fuzzer")
    yield api
    api.close()


def test_the_policy_admits_exactly_what_the_rules_admit(fuzz_policy, fuzzer, namespace, figures):
    limits = fuzz_policy
    disagreements: list[str] = []
    counts = {"admitted": 0, "refused": 0}

    @given(spec=specs)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def judge(spec: dict[str, Any]) -> None:
        work = {**BASE, **spec}
        expected = expected_refusals(work, RIGHTS, limits)
        message = refusal(fuzzer, namespace, work)
        if message is not None and "ValidatingAdmissionPolicy" not in message:
            raise AssertionError(f"refused by something else than the policy: {message[:500]}")
        counts["refused" if message else "admitted"] += 1
        if expected and message is None:
            disagreements.append(f"ADMITTED, rules refuse {sorted(expected)}: {json.dumps(spec)}")
        elif not expected and message is not None:
            disagreements.append(f"REFUSED, the rules admit: {json.dumps(spec)}: {message[:400]}")
        elif message is not None and not any(
            field.removesuffix("unknown") in message for field in expected
        ):
            disagreements.append(f"REFUSAL NAMES NONE OF {sorted(expected)}: {message[:400]}")

    judge()
    figures["bad inputs tried"] += counts["admitted"] + counts["refused"]
    print(f"\n{counts['admitted']} admitted, {counts['refused']} refused")
    assert counts["admitted"] > 0 and counts["refused"] > 0, counts
    assert not disagreements, "\n".join(disagreements[:20])
