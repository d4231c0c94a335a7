#!/usr/bin/env bash
# The C library's files: `pc-dev` writes the build tree's pkg-config file
# (target/pkgconfig/keyval.pc, linking the static library, so that the Go
# binding builds in this checkout with nothing installed); `install` and
# `uninstall` lay the library out the way distributions do:
#   $LIBDIR/libkeyval.so.$VERSION, libkeyval.so.$SOVERSION and libkeyval.so
#   (symlinks), libkeyval.a (debug info stripped), $INCLUDEDIR/keyval.h,
#   $LIBDIR/pkgconfig/keyval.pc and $LIBDIR/cmake/KeyVal/.
# PREFIX, LIBDIR and INCLUDEDIR are the run-time locations written into
# keyval.pc and the CMake package; DESTDIR stages the files elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
PREFIX=${PREFIX:-/usr/local}
LIBDIR=${LIBDIR:-$PREFIX/lib}
INCLUDEDIR=${INCLUDEDIR:-$PREFIX/include}
DESTDIR=${DESTDIR:-}

# A template of bindings/c/ with prefix $2, libdir $3, includedir $4.
subst() {
  local cmake_libs major minor
  cmake_libs=$(echo "$STATIC_LIBS" | sed 's/-l//g; s/ /;/g')
  major=${VERSION%%.*}
  minor=$(echo "$VERSION" | cut -d. -f2)
  sed -e "s|@PREFIX@|$2|; s|@LIBDIR@|$3|; s|@INCLUDEDIR@|$4|" \
      -e "s|@VERSION@|$VERSION|g; s|@SOVERSION@|$SOVERSION|g; s|@STATIC_LIBS@|$STATIC_LIBS|" \
      -e "s|@CMAKE_STATIC_LIBS@|$cmake_libs|; s|@VERSION_MAJOR@|$major|" \
      -e "s|@VERSION_MAJOR_MINOR@|$major.$minor|" "bindings/c/$1"
}

case "${1:-}" in
  pc-dev)
    mkdir -p target/pkgconfig
    # Programs linked against the build tree record the SONAME.
    ln -sf libkeyval.so "$REL/libkeyval.so.$SOVERSION"
    subst keyval.pc.in "$PWD" "$PWD/$REL" "$PWD/include" \
      | sed "s|^Libs: .*|Libs: \${libdir}/libkeyval.a $STATIC_LIBS|" > target/pkgconfig/keyval.pc
    ;;
  install)
    install -d "$DESTDIR$LIBDIR/pkgconfig" "$DESTDIR$LIBDIR/cmake/KeyVal" "$DESTDIR$INCLUDEDIR"
    install -m 755 "$REL/libkeyval.so" "$DESTDIR$LIBDIR/libkeyval.so.$VERSION"
    ln -sf "libkeyval.so.$VERSION" "$DESTDIR$LIBDIR/libkeyval.so.$SOVERSION"
    ln -sf "libkeyval.so.$SOVERSION" "$DESTDIR$LIBDIR/libkeyval.so"
    install -m 644 "$REL/libkeyval.a" "$DESTDIR$LIBDIR/libkeyval.a"
    if [ "$PROFILE" = release ]; then strip --strip-debug "$DESTDIR$LIBDIR/libkeyval.a"; fi
    install -m 644 include/keyval.h "$DESTDIR$INCLUDEDIR/keyval.h"
    subst keyval.pc.in "$PREFIX" "$LIBDIR" "$INCLUDEDIR" > "$DESTDIR$LIBDIR/pkgconfig/keyval.pc"
    for f in KeyValConfig KeyValConfigVersion; do
      subst "$f.cmake.in" "$PREFIX" "$LIBDIR" "$INCLUDEDIR" > "$DESTDIR$LIBDIR/cmake/KeyVal/$f.cmake"
    done
    echo "installed KeyVal $VERSION under $DESTDIR$PREFIX"
    ;;
  uninstall)
    rm -f "$DESTDIR$LIBDIR"/libkeyval.so{,.$SOVERSION,.$VERSION} "$DESTDIR$LIBDIR/libkeyval.a" \
      "$DESTDIR$INCLUDEDIR/keyval.h" "$DESTDIR$LIBDIR/pkgconfig/keyval.pc" \
      "$DESTDIR$LIBDIR"/cmake/KeyVal/KeyValConfig{,Version}.cmake
    rmdir "$DESTDIR$LIBDIR/cmake/KeyVal" 2>/dev/null || true
    ;;
  *) echo "usage: scripts/c_lib.sh pc-dev|install|uninstall" >&2; exit 2 ;;
esac
