#!/usr/bin/env bash
# C tests: every function and error path, linked against both the shared
# and the static library, run under valgrind with zero errors and leaks;
# the C++ compile check proves cpp_compat; the SONAME is checked.
# `scripts/c_test.sh example` only builds and runs examples/c/basic.c.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
mkdir -p "$BUILD"
shared=(-L"$REL" -lkeyval -Wl,-rpath,"$PWD/$REL")
static=("$REL/libkeyval.a" $STATIC_LIBS)
if [ "${1:-}" = example ]; then
  $CC $CFLAGS examples/c/basic.c "${shared[@]}" -o "$BUILD/basic"
  d=$(mktemp -d); "$BUILD/basic" "$d/db"; rm -rf "$d"
  exit 0
fi
VALGRIND=(valgrind -q --error-exitcode=99 --leak-check=full
  --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible)
$CC $CFLAGS tests/c/test_ffi.c "${shared[@]}" -lpthread -o "$BUILD/test_ffi_shared"
$CC $CFLAGS tests/c/test_ffi.c "${static[@]}" -o "$BUILD/test_ffi_static"
$CXX $CXXFLAGS tests/c/cpp_compile.cpp "${shared[@]}" -o "$BUILD/cpp_compile"
$CC $CFLAGS examples/c/basic.c "${shared[@]}" -o "$BUILD/basic_shared"
$CC $CFLAGS examples/c/basic.c "${static[@]}" -o "$BUILD/basic_static"
"$BUILD/cpp_compile"
readelf -d "$REL/libkeyval.so" | grep -q "SONAME.*\[libkeyval\.so\.$SOVERSION\]"
for v in shared static; do
  d=$(mktemp -d); "${VALGRIND[@]}" "$BUILD/test_ffi_$v" "$d"; rm -rf "$d"
  d=$(mktemp -d); "${VALGRIND[@]}" "$BUILD/basic_$v" "$d/db" > /dev/null; rm -rf "$d"
done
echo "c-test: C tests and example passed under valgrind (shared and static)"
