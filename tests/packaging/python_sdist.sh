#!/usr/bin/env bash
# The Python package as a user meets it from PyPI: build the sdist, check
# that it carries the Rust crate, install it with pip into a fresh virtual
# environment outside the repository (pip builds the wheel from the sdist
# in an isolated build environment: setuptools-rust runs cargo), and run a
# smoke test from a directory with no checkout on the path. Run from the
# repository root with the venv that has `build` (make py-sdist-test).
set -euo pipefail
repo=$(pwd)
py=${PYTHON:-$repo/target/py-venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' bindings/python/keyval/__init__.py)

"$py" -m build --sdist --no-isolation --outdir "$work/dist" bindings/python > "$work/sdist.log" 2>&1 \
  || { cat "$work/sdist.log"; exit 1; }
sdist=$work/dist/keyval-$version.tar.gz
test -f "$sdist"
listing=$(tar tzf "$sdist")
for f in rust/Cargo.toml rust/Cargo.lock rust/build.rs rust/cbindgen.toml rust/src/lib.rs rust/src/ffi/mod.rs \
         keyval/__init__.py keyval/py.typed setup.py pyproject.toml LICENSE-MIT LICENSE-APACHE; do
  grep -qx "keyval-$version/$f" <<<"$listing" || { echo "py-sdist-test: sdist lacks $f"; exit 1; }
done
if grep -q "libkeyval" <<<"$listing"; then echo "py-sdist-test: sdist carries a built library"; exit 1; fi

python3 -m venv "$work/venv"
cd "$work"
# Cargo's compiled dependencies are kept between runs in target/; the crate
# itself is rebuilt from the unpacked sdist each time.
env -u PYTHONPATH -u KEYVAL_LIBRARY -u KEYVAL_SOURCE_DIR CARGO_TARGET_DIR="$repo/target/sdist-test" \
  "$work/venv/bin/pip" install -q "$sdist"
env -u PYTHONPATH -u KEYVAL_LIBRARY "$work/venv/bin/python" - "$work/db" "$version" <<'PY'
import sys
import keyval

assert "site-packages" in keyval.__file__, keyval.__file__
assert keyval.__version__ == sys.argv[2] == keyval.version(), (keyval.__version__, keyval.version())
with keyval.open(sys.argv[1]) as db:
    db[b"lang"] = b"python"
with keyval.open(sys.argv[1]) as db:
    assert db[b"lang"] == b"python"
print("py-sdist-test: keyval", keyval.version(), "from", keyval.__file__)
PY
echo "py-sdist-test: the sdist builds and installs in a clean venv"
