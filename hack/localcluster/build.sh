#!/usr/bin/env bash
# Builds the real control-plane binaries used by the local test cluster.
#
# kube-apiserver, kube-controller-manager, kube-scheduler and kubelet come from
# k8s.io/kubernetes (the last two serve the real node only), etcd
# and etcdctl from go.etcd.io/etcd, each through a small wrapper Go module in
# go/k8s and go/etcd (kept apart so that Go's version selection cannot move
# the shared dependencies of one under the other). Binaries land in a cache
# outside the repository, keyed by version, with one stamp per binary: a warm
# run only hashes a few files and exits, and it needs no network.
#
# Environment:
#   WORKFLOW_K8S_CACHE   cache root (default: $HOME/.cache/workflow-k8s)
#   WORKFLOW_K8S_FORCE=1 rebuild even when the stamps match
#   WORKFLOW_REAL_NODE=1 also build kube-scheduler and kubelet (the real node)
# Prints the binary directory as its last line.
set -euo pipefail

K8S_VERSION=v1.36.3
K8S_MINOR=36
STAGING_VERSION=v0.36.3
ETCD_VERSION=v3.6.16
GO_DIRECTIVE=1.26.0
GODEBUG_DEFAULT=go1.26
MIN_FREE_GB=6

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_ROOT=${WORKFLOW_K8S_CACHE:-$HOME/.cache/workflow-k8s}
VERSION_DIR=$CACHE_ROOT/$K8S_VERSION
OUT=$VERSION_DIR/bin
STAMPS=$VERSION_DIR/stamps

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"

START=$SECONDS
log() { printf '[build %4ds] %s\n' "$((SECONDS - START))" "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v go >/dev/null || die "the Go toolchain (go) is not on PATH; install Go ${GO_DIRECTIVE%.*} or newer"
command -v python3 >/dev/null || die "python3 is not on PATH"
GO_VERSION=$(go env GOVERSION)

version_ldflags() {
    local v=$K8S_VERSION
    printf '%s ' -s -w \
        "-X k8s.io/component-base/version.gitVersion=$v" \
        "-X k8s.io/component-base/version.gitMajor=1" \
        "-X k8s.io/component-base/version.gitMinor=$K8S_MINOR" \
        "-X k8s.io/component-base/version.gitTreeState=clean" \
        "-X k8s.io/client-go/pkg/version.gitVersion=$v" \
        "-X k8s.io/client-go/pkg/version.gitMajor=1" \
        "-X k8s.io/client-go/pkg/version.gitMinor=$K8S_MINOR" \
        "-X k8s.io/client-go/pkg/version.gitTreeState=clean"
}

# The key of a binary: what selects its bytes (go.sum only checks what go.mod selects).
stamp_key() {  # module_dir ldflags
    { echo "$GO_VERSION"; echo "$2"; cat "$1/go.mod"; } | sha256sum | cut -d' ' -f1
}

is_fresh() {  # name key
    [[ "${WORKFLOW_K8S_FORCE:-0}" != 1 && -x "$OUT/$1" && -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]
}

check_disk() {
    local free_kb
    mkdir -p "$CACHE_ROOT"
    free_kb=$(df -Pk "$CACHE_ROOT" | awk 'NR==2 {print $4}')
    if (( free_kb < MIN_FREE_GB * 1024 * 1024 )); then
        die "only $((free_kb / 1024 / 1024)) GiB free under $CACHE_ROOT; a cold build needs about ${MIN_FREE_GB} GiB (module + build caches)"
    fi
}

module_requires() {  # module_dir path version -> true when go.mod requires path at version
    [[ -f "$1/go.mod" ]] && (cd "$1" && go mod edit -json) | python3 -c '
import json, sys
mod = json.load(sys.stdin)
sys.exit(0 if any(r["Path"] == sys.argv[1] and r["Version"] == sys.argv[2] for r in mod.get("Require") or []) else 1)
' "$2" "$3"
}

# Writes go/k8s/go.mod: upstream's staging replaces ("k8s.io/X => ./staging/src/k8s.io/X")
# become "k8s.io/X => k8s.io/X STAGING_VERSION", then the commands become tools.
generate_k8s_module() {
    local dir=$HERE/go/k8s upstream_mod
    log "generating $dir/go.mod for k8s.io/kubernetes $K8S_VERSION"
    rm -f "$dir/go.mod" "$dir/go.sum"
    (
        cd "$dir"
        go mod init local.invalid/workflow-k8s-bins >/dev/null 2>&1
        go mod edit -go="$GO_DIRECTIVE" -godebug=default="$GODEBUG_DEFAULT"
        upstream_mod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
        for m in $(go mod edit -json "$upstream_mod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if r["New"]["Path"].startswith("./staging/"):
        print(r["Old"]["Path"])
'); do
            go mod edit -replace="$m=$m@$STAGING_VERSION"
        done
        go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
                      "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
                      "k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION" \
                      "k8s.io/kubernetes/cmd/kubelet@$K8S_VERSION"
    )
}

generate_etcd_module() {
    local dir=$HERE/go/etcd
    log "generating $dir/go.mod for etcd $ETCD_VERSION"
    rm -f "$dir/go.mod" "$dir/go.sum"
    (
        cd "$dir"
        go mod init local.invalid/workflow-etcd-bins >/dev/null 2>&1
        go mod edit -go="$GO_DIRECTIVE"
        go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION"
    )
}

build_one() {  # module_dir name package ldflags
    local dir=$1 name=$2 pkg=$3 ldflags=$4 key t0
    key=$(stamp_key "$dir" "$ldflags")
    if is_fresh "$name" "$key"; then
        log "$name is up to date"
        return
    fi
    check_disk
    t0=$SECONDS
    log "building $name ($pkg) ..."
    (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$OUT/$name.tmp" "$pkg") \
        || die "go build of $name failed (module $dir)"
    mv -f "$OUT/$name.tmp" "$OUT/$name"
    echo "$key" >"$STAMPS/$name"
    log "built $name in $((SECONDS - t0))s"
}

main() {
    mkdir -p "$OUT" "$STAMPS"
    local k8s_flags etcd_flags
    k8s_flags=$(version_ldflags)
    etcd_flags="-s -w"

    module_requires "$HERE/go/k8s" k8s.io/kubernetes "$K8S_VERSION" || generate_k8s_module
    module_requires "$HERE/go/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" || generate_etcd_module

    build_one "$HERE/go/k8s" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$k8s_flags"
    build_one "$HERE/go/k8s" kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_flags"
    if [[ "${WORKFLOW_REAL_NODE:-0}" == 1 ]]; then
        build_one "$HERE/go/k8s" kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$k8s_flags"
        build_one "$HERE/go/k8s" kubelet k8s.io/kubernetes/cmd/kubelet "$k8s_flags"
    fi
    build_one "$HERE/go/etcd" etcd go.etcd.io/etcd/server/v3 "$etcd_flags"
    build_one "$HERE/go/etcd" etcdctl go.etcd.io/etcd/etcdctl/v3 "$etcd_flags"

    {
        echo "kubernetes $K8S_VERSION"
        echo "etcd $ETCD_VERSION"
        echo "go $GO_VERSION"
    } >"$VERSION_DIR/stamp"
    log "all binaries ready in $OUT"
    echo "$OUT"
}

main "$@"
