#!/usr/bin/env bash
# Install KeyVal into a temporary prefix (with DESTDIR staging, as a
# package build does), then build tests/packaging/c/main.c outside the
# repository the three ways a C user would: pkg-config (shared), pkg-config
# --static, and CMake find_package. Each program runs; the static ones must
# not need libkeyval.so at run time. Finally `make uninstall` removes
# everything it installed. Run from the repository root (make c-install-test).
set -euo pipefail
repo=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=/opt/keyval-test
stage=$work/stage
root=$stage$prefix

make -s --no-print-directory install DESTDIR="$stage" PREFIX="$prefix" >/dev/null
# Files the package must hold.
for f in lib/libkeyval.so lib/libkeyval.so.0 lib/libkeyval.a include/keyval.h \
         lib/pkgconfig/keyval.pc lib/cmake/KeyVal/KeyValConfig.cmake; do
  test -e "$root/$f" || { echo "c-install-test: $f not installed"; exit 1; }
done
readelf -d "$root/lib/libkeyval.so.0" | grep -q 'SONAME.*libkeyval.so.0'
if readelf -S "$root/lib/libkeyval.a" 2>/dev/null | grep -q '\.debug_info'; then
  echo "c-install-test: the installed libkeyval.a carries debug info"; exit 1
fi
grep -q "^prefix=$prefix\$" "$root/lib/pkgconfig/keyval.pc"

# The staged tree stands in for the real prefix: a copy of the consumer
# program outside the repository, pointed at it with the usual variables.
cp -r "$repo/tests/packaging/c" "$work/app"
cd "$work/app"
export PKG_CONFIG_PATH="$root/lib/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$stage"
cc=${CC:-cc}

# 1. Shared, with pkg-config.
$cc -std=c11 -Wall -Werror main.c $(pkg-config --cflags --libs keyval) -o app_shared
ldd app_shared | grep -q 'libkeyval.so.0 => not found'
LD_LIBRARY_PATH="$root/lib" ./app_shared "$work/db1"

# The README's C quick start is a whole program: it builds as its first
# line says and runs.
awk '/^## C quick start/{f=1} f&&/^```c/{p=1;next} p&&/^```/{exit} p' "$repo/README.md" > readme_app.c
grep -q 'int main' readme_app.c
$cc readme_app.c $(pkg-config --cflags --libs keyval) -o readme_app
(mkdir -p "$work/readme" && cd "$work/readme" && LD_LIBRARY_PATH="$root/lib" "$work/app/readme_app" | grep -qx 'k = v')

# 2. Static, with pkg-config --static. -l:libkeyval.a picks the archive even
#    though libkeyval.so sits beside it (GNU ld and lld).
libs=$(pkg-config --static --libs keyval | sed 's/-lkeyval\b/-l:libkeyval.a/')
$cc -std=c11 -Wall -Werror main.c $(pkg-config --cflags keyval) $libs -o app_static
if ldd app_static | grep -q libkeyval; then echo "c-install-test: static app needs libkeyval.so"; exit 1; fi
./app_static "$work/db2"
size=$(stat -c %s app_static)
echo "c-install-test: static program is $size bytes"

# 3. CMake find_package, shared and static imported targets. The package
#    names run-time paths, so point CMake at the staged copy of them.
sed -i "s|\"$prefix|\"$root|g" "$root/lib/cmake/KeyVal/KeyValConfig.cmake"
cmake -S . -B build -DCMAKE_PREFIX_PATH="$root" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build >/dev/null
./build/app_cmake "$work/db3"
if ldd build/app_cmake_static | grep -q libkeyval; then echo "c-install-test: CMake static app needs libkeyval.so"; exit 1; fi
./build/app_cmake_static "$work/db4"

cd "$repo"
make -s --no-print-directory uninstall DESTDIR="$stage" PREFIX="$prefix"
left=$(find "$root" -type f | wc -l)
if [ "$left" != 0 ]; then echo "c-install-test: uninstall left files:"; find "$root" -type f; exit 1; fi
echo "c-install-test: pkg-config (shared and static) and CMake find_package builds run"
