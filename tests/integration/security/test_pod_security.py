"""Work pods run as non-root, without privilege escalation, on a read-only root filesystem, and
the runner needs nothing more.

The process kubelet does not enforce security contexts, so the second test
enforces them itself: it runs ``workflow run`` as the pods' user (uid 1000)
with no capabilities, ``no_new_privs``, the root filesystem read-only and only
a fresh ``/tmp`` writable (the Job's ``emptyDir``), and checks that Works of
every kind run and record their outcome in buckets.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import httpx
import pytest
import yaml
from kubernetes import client

from fixtures.skipping import skip
from workflow.controller.settings import OperatorSettings

pytestmark = pytest.mark.integration

#: The confined runner's private /tmp, as the Job's emptyDir is (not the host's /tmp).
POD_TMP = "/tmp"  # noqa: S108
SPEC = {"pipeline": "secure-pods", "site": "local", "user": "tester", "retries": 0, "timeout": 60}


@pytest.mark.cluster
def test_work_pods_run_as_non_root_read_only_and_without_privileges(
    operator_process, works, buckets_process, kube, namespace
):
    operator_process(buckets_process.url, **buckets_process.operator_env)
    works.apply("locked", {**SPEC, "command": ["python3", "-c", "print('fine')"]})
    work = works.wait_phase("locked", "success", "failure")
    assert work["status"]["phase"] == "success", work["status"]
    [job] = works.jobs("locked")
    [pod] = (
        client.CoreV1Api(kube)
        .list_namespaced_pod(namespace, label_selector="job-name=locked-a1")
        .items
    )
    for template in (job.spec.template.spec, pod.spec):
        assert template.automount_service_account_token is False
        assert template.security_context.run_as_non_root is True
        assert template.security_context.run_as_user == OperatorSettings().run_as_user != 0
        assert template.security_context.seccomp_profile.type == "RuntimeDefault"
        [container] = template.containers
        context = container.security_context
        assert context.allow_privilege_escalation is False
        assert context.read_only_root_filesystem is True
        assert context.capabilities.drop == ["ALL"] and not context.capabilities.add
        assert not context.privileged


@pytest.mark.cluster
@pytest.mark.parametrize(
    "escape",
    [
        {"securityContext": {"privileged": True}},
        {"hostNetwork": True},
        {"containers": [{"name": "extra", "image": "busybox"}]},
        {"volumes": [{"name": "host", "hostPath": {"path": "/"}}]},
    ],
    ids=["securityContext", "hostNetwork", "containers", "hostPath"],
)
def test_a_work_cannot_ask_for_more_privileges(cluster, namespace, work_crd, escape, figures):
    manifest = {"apiVersion": "workflow.dev/v1alpha1", "kind": "Work",
                "metadata": {"name": "greedy", "namespace": namespace},
                "spec": {**SPEC, "command": ["true"], **escape}}  # fmt: skip
    result = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest), check=False)
    figures["bad inputs tried"] += 1
    assert result.returncode != 0 and "unknown field" in result.stderr, result.stderr


#: Enters a private mount namespace, makes the root filesystem read-only, gives a fresh /tmp
#: and drops to uid 1000 with no capabilities: what the Job's security context asks for.
#: The interpreter and the package stay visible read-only wherever they live (under /root
#: or /tmp included), as the image's own files would be.
SANDBOX = r"""
set -eu
mount --bind /root "$SCRATCH"
mount -t tmpfs -o mode=755 tmpfs /root
for kept in $KEEP; do mkdir -p "/root/$kept"; mount --bind "$SCRATCH/$kept" "/root/$kept"; done
umount "$SCRATCH"
mount -o remount,bind,ro /
for kept in $KEEP; do mount -o remount,bind,ro "/root/$kept"; done
mount -t tmpfs tmpfs /mnt
mkdir /mnt/host-tmp
mount --bind /tmp /mnt/host-tmp
mount -t tmpfs -o mode=1777,size=64m tmpfs /tmp
for kept in $KEEP_TMP; do
  mkdir -p "/tmp/$kept"; mount --bind "/mnt/host-tmp/$kept" "/tmp/$kept"
  mount -o remount,bind,ro "/tmp/$kept"
done
cd /tmp
exec setpriv --reuid=1000 --regid=1000 --clear-groups --no-new-privs \
    --bounding-set=-all --inh-caps=-all "$@"
"""


def confined_run(work: dict, buckets_url: str, tmp_path) -> tuple[int, dict, str]:
    """Run ``workflow run --work-env`` confined as a pod would be; (exit code, summary, output)."""
    import workflow

    needed = (os.path.realpath(sys.executable), sys.prefix, sys.base_prefix, workflow.__file__)

    def tops(root: str) -> list[str]:
        return sorted(
            {
                os.path.relpath(os.path.realpath(path), root).split(os.sep)[0]
                for path in needed
                if os.path.realpath(path).startswith(root + "/")
            }
        )

    kept, kept_tmp = tops("/root"), tops("/tmp")  # noqa: S108 - the real /tmp, to hide it
    scratch = tmp_path / "root-view"
    scratch.mkdir(parents=True)
    env = {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin",
        "HOME": POD_TMP,
        "WORKFLOW_WORK": json.dumps(work),
        "WORKFLOW_HTTP_BASEURL": buckets_url,
        "WORKFLOW_TERMINATION_LOG": f"{POD_TMP}/termination-log",
        "SCRATCH": str(scratch),
        "KEEP": " ".join(kept),
        "KEEP_TMP": " ".join(kept_tmp),
    }
    script = "python -m workflow run --work-env WORKFLOW_WORK; code=$?; cat /tmp/termination-log"
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", SANDBOX, "sandbox",
         "sh", "-c", f"{script}; exit $code"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    summary = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    return result.returncode, summary, result.stdout + result.stderr


def test_the_runner_needs_nothing_more_than_the_pods_give_it(buckets_sqlite, tmp_path, figures):
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")):
        skip("needs root, unshare and setpriv to confine the runner")
    writes_results = (
        "import json, os, pathlib; pathlib.Path('/tmp/out.txt').write_text('x'); "
        "json.dump({'results': {'n': 3}, 'products': ['/tmp/out.txt']}, "
        "open(os.environ['WORKFLOW_RESULTS_PATH'], 'w'))"
    )
    cases = {
        "function": ({"function": "workflow.examples.functions.mean",
                      "parameters": {"values": [1, 2, 3]}}, "success", "Completed"),
        "command": ({"command": ["python", "-c", writes_results]}, "success", "Completed"),
        "writes-outside-tmp": (
            {"command": ["sh", "-c", "echo no > /work/forbidden"]}, "failure", "Error",
        ),
        "timeout": ({"command": ["sleep", "30"], "timeout": 1}, "failure", "DeadlineExceeded"),
    }  # fmt: skip
    with buckets_sqlite.client() as http:
        for name, (fields, status, reason) in cases.items():
            work = {"pipeline": "confined", "site": "local", "user": "u", **fields}
            [work_id] = http.post("/work", params={"return_ids": "True"}, json=[work]).json()
            stored = http.get(f"/work/{work_id}").json()
            code, summary, output = confined_run(
                {**stored, "status": "running", "attempt": 1}, buckets_sqlite.url, tmp_path / name
            )
            assert (summary.get("status"), summary.get("reason")) == (status, reason), output
            assert code == (0 if status == "success" else 1), output
            assert summary["recorded"] is True, output
            record = http.get(f"/work/{work_id}").json()
            assert record["status"] == status, record
            if name == "command":
                assert record["results"] == {"n": 3} and record["products"] == [
                    f"{POD_TMP}/out.txt"
                ]
            if name == "writes-outside-tmp":
                assert "Read-only file system" in record["results"]["stderr"], record["results"]
    assert httpx.get(f"{buckets_sqlite.url}/healthz", timeout=10).status_code == 200
