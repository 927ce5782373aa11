#!/usr/bin/env bash
# End-to-end check on a real node, for machines with Docker: build the image,
# start a kind cluster, load the image into it, install the chart, apply the
# sample Works in examples/, wait for each to succeed and print its results.
# The local control plane the tests use has no container runtime; this script
# is what proves the image and the chart together. Keep it in step with the
# chart (release name, values) and the examples.
#
#   hack/kind-e2e.sh            # create the cluster, run, delete the cluster
#   KEEP_CLUSTER=1 hack/kind-e2e.sh   # leave the cluster for exploring
#
# Needs: docker, kind, kubectl; helm is installed by hack/ensure-helm.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER=${KIND_CLUSTER:-workflow-e2e}
NAMESPACE=${NAMESPACE:-workflow}
# Works run in their own namespace: the chart refuses the operator's (NAMESPACE).
WORK_NAMESPACE=${WORK_NAMESPACE:-workflow-works}
RELEASE=${RELEASE:-workflow}
IMAGE_REPOSITORY=${IMAGE_REPOSITORY:-workflow.local/workflow}
IMAGE_TAG=${IMAGE_TAG:-e2e}
TIMEOUT=${TIMEOUT:-300s}
KEEP_CLUSTER=${KEEP_CLUSTER:-0}

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "error: $1 is needed" >&2
    exit 1
  }
}

need docker
need kind
need kubectl
HELM=${HELM:-$("${ROOT}/hack/ensure-helm.sh")}

cleanup() {
  local status=$?
  if [[ ${status} -ne 0 ]]; then
    echo "==> failed; the state of the release:" >&2
    kubectl get all -n "${NAMESPACE}" -o wide >&2 || true
    kubectl get jobs,pods,works -n "${WORK_NAMESPACE}" -o wide >&2 || true
    kubectl logs -n "${NAMESPACE}" -l "app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=operator" \
      --tail=100 >&2 || true
  fi
  if [[ "${KEEP_CLUSTER}" != "1" ]]; then
    kind delete cluster --name "${CLUSTER}" >/dev/null 2>&1 || true
  else
    echo "==> cluster ${CLUSTER} kept: kubectl --context kind-${CLUSTER} get works -A"
  fi
  exit "${status}"
}
trap cleanup EXIT

echo "==> building ${IMAGE_REPOSITORY}:${IMAGE_TAG}"
docker build -t "${IMAGE_REPOSITORY}:${IMAGE_TAG}" "${ROOT}"

if ! kind get clusters 2>/dev/null | grep -qx "${CLUSTER}"; then
  echo "==> creating kind cluster ${CLUSTER}"
  kind create cluster --name "${CLUSTER}" --wait 120s
fi
kubectl config use-context "kind-${CLUSTER}" >/dev/null
echo "==> loading the image into ${CLUSTER}"
kind load docker-image "${IMAGE_REPOSITORY}:${IMAGE_TAG}" --name "${CLUSTER}"

echo "==> installing the chart as ${RELEASE} in ${NAMESPACE}, running the Works of ${WORK_NAMESPACE}"
kubectl create namespace "${WORK_NAMESPACE}" --dry-run=client -o yaml | kubectl apply -f -
# pullPolicy Never: the image exists only inside the kind node.
"${HELM}" upgrade --install "${RELEASE}" "${ROOT}/charts/workflow" \
  --namespace "${NAMESPACE}" --create-namespace \
  --set image.repository="${IMAGE_REPOSITORY}" \
  --set image.tag="${IMAGE_TAG}" \
  --set image.pullPolicy=Never \
  --set operator.workImagePullPolicy=Never \
  --set operator.namespaces="{${WORK_NAMESPACE}}" \
  --wait --timeout "${TIMEOUT}"
for component in buckets operator; do
  deployment=$(kubectl get deployment -n "${NAMESPACE}" -o name \
    -l "app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=${component}")
  kubectl rollout status -n "${NAMESPACE}" "${deployment}" --timeout "${TIMEOUT}"
done

echo "==> applying the sample Works"
kubectl apply -n "${WORK_NAMESPACE}" -f "${ROOT}/examples/"
mapfile -t works < <(kubectl get works -n "${WORK_NAMESPACE}" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
for work in "${works[@]}"; do
  echo "==> waiting for Work ${work}"
  kubectl wait -n "${WORK_NAMESPACE}" "work/${work}" \
    --for=jsonpath='{.status.phase}'=success --timeout "${TIMEOUT}"
done

echo "==> results"
kubectl get works -n "${WORK_NAMESPACE}" -o wide
for work in "${works[@]}"; do
  printf '%s: ' "${work}"
  kubectl get -n "${WORK_NAMESPACE}" "work/${work}" -o jsonpath='{.status.results}'
  echo
done
echo "==> all ${#works[@]} Works succeeded"
