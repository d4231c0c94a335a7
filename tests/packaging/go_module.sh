#!/usr/bin/env bash
# The Go modules as a user meets them: module zips of the binding and of
# raftstore are served from a file-based GOPROXY (not from the network, no replace
# directives, no go.work), a fresh module outside the repository requires
# them by version, and `go build` links it against the C library installed
# into a temporary prefix, found through pkg-config. The program runs.
# Third-party modules come from the local module cache, also as a file
# proxy, and from the usual Go proxy for what the cache lacks: the
# checkout's builds select newer versions of some (golang.org/x/sys)
# through go.work, so a fresh machine's cache need not hold the versions
# this module selects. Run from the repository root (make go-module-test).
set -euo pipefail
repo=$(pwd)
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
version=v$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
prefix=$work/prefix
make -s --no-print-directory install PREFIX="$prefix" >/dev/null

cache=$(go env GOMODCACHE)
proxy=$work/proxy
# Write the proxy files of module $1 from directory $2 (see `go help
# goproxy`): list, .info, .mod and a zip of the module's files under
# "<module>@<version>/", leaving out nested modules.
publish() {
  local mod=$1 dir=$2 out=$proxy/$1/@v
  mkdir -p "$out"
  echo "$version" > "$out/list"
  printf '{"Version":"%s","Time":"2026-01-01T00:00:00Z"}\n' "$version" > "$out/$version.info"
  cp "$dir/go.mod" "$out/$version.mod"
  python3 - "$mod@$version" "$dir" "$out/$version.zip" <<'PY'
import os, sys, zipfile
prefix, root, dest = sys.argv[1], sys.argv[2], sys.argv[3]
with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
    for d, subdirs, files in os.walk(root):
        if d != root and os.path.exists(os.path.join(d, "go.mod")):
            subdirs[:] = []
            continue
        subdirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            z.write(p, prefix + "/" + os.path.relpath(p, root))
PY
}
publish github.com/keyval/keyval/bindings/go bindings/go
publish github.com/keyval/keyval/bindings/go/raftstore bindings/go/raftstore

mkdir "$work/app"
cp tests/packaging/go/main.go "$work/app/"
cd "$work/app"
cat > go.mod <<GOMOD
module example.com/keyval-consumer

go 1.24

require (
	github.com/hashicorp/raft v1.7.3
	github.com/keyval/keyval/bindings/go $version
	github.com/keyval/keyval/bindings/go/raftstore $version
)
GOMOD
export GOWORK=off GOFLAGS=-mod=mod GOSUMDB=off GONOSUMDB= GOPRIVATE= GONOPROXY=
upstream=$(go env GOPROXY)
export GOPROXY="file://$proxy,file://$cache/cache/download,$upstream"
export GOMODCACHE=$work/modcache
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
go build -o consumer .
grep -q "github.com/keyval/keyval/bindings/go $version" go.sum
LD_LIBRARY_PATH=$prefix/lib ./consumer "$work/data"
cd "$repo"
echo "go-module-test: both modules fetched by version from a file GOPROXY, built against the installed library"
