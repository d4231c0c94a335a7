# Shared settings of the scripts the Makefile runs (sourced, not run).
# The Makefile passes PROFILE; everything else is derived here.
CARGO=${CARGO:-cargo}
CC=${CC:-gcc}
CXX=${CXX:-g++}
PROFILE=${PROFILE:-release}
REL=target/$PROFILE
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# The shared library's ABI version; keep in step with SOVERSION in build.rs (the SONAME).
SOVERSION=0
BUILD=target/c
CFLAGS="-std=c11 -Wall -Wextra -Werror -O1 -g -Iinclude"
CXXFLAGS="-std=c++17 -Wall -Wextra -Werror -Iinclude"
# rustc's native-static-libs for this target (cargo rustc -- --print native-static-libs)
STATIC_LIBS="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
PYENV=target/py-venv
