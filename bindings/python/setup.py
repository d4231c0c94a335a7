"""Build hook for the keyval Python package (setuptools + setuptools-rust).

The package is ctypes over KeyVal's C ABI, so the native part is a plain
shared library, not a CPython extension: setuptools-rust builds the Rust
crate with `Binding.NoBinding`, this file names the result
``keyval/libkeyval.so`` (``.dylib`` on macOS) and tags the wheel
``py3-none-<platform>``, one wheel per platform for every Python 3.

Where the crate comes from:
- in a checkout of the repository, the crate two directories up;
- in an sdist, the copy under ``rust/`` that ``make_release_tree`` below
  put there (the sdist is self-contained: Rust sources, Cargo.lock, build
  script), with the workspace-only parts of the manifest left out.

Building needs Rust (cargo >= 1.85; https://rustup.rs). Run pip with -v to
see cargo's progress.
"""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.sdist import sdist
from setuptools_rust import Binding, RustExtension, build_rust

HERE = Path(__file__).resolve().parent
VENDORED = HERE / "rust"
CHECKOUT = HERE.parents[1]
LIB_NAME = "libkeyval.dylib" if sys.platform == "darwin" else "libkeyval.so"


def crate_manifest() -> str:
    if (VENDORED / "Cargo.toml").is_file():
        return "rust/Cargo.toml"
    if (CHECKOUT / "Cargo.toml").is_file() and (CHECKOUT / "src" / "ffi").is_dir():
        return str(CHECKOUT / "Cargo.toml")
    raise SystemExit("keyval: the Rust sources are missing: build from an sdist or a checkout of the repository")


def standalone_manifest(text: str) -> str:
    """The crate's Cargo.toml without what only the repository's workspace
    needs: the member list (its members are not in the sdist) and the
    dev-dependencies (tests are not either). An empty [workspace] table makes
    the copy its own workspace root, wherever it is unpacked."""
    text = re.sub(r"(?ms)^\[workspace\]\n.*?(?=^\[|\Z)", "", text)
    text = re.sub(r"(?ms)^\[dev-dependencies\]\n.*?(?=^\[|\Z)", "", text)
    return text.rstrip() + "\n\n[workspace]\n"


class SdistWithCrate(sdist):
    """Put the Rust crate into the sdist under rust/."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        dest = Path(base_dir) / "rust"
        if (VENDORED / "Cargo.toml").is_file():  # an sdist built from an sdist
            shutil.copytree(VENDORED, dest, dirs_exist_ok=True)
            return
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("Cargo.lock", "build.rs", "cbindgen.toml", "LICENSE-MIT", "LICENSE-APACHE"):
            shutil.copy2(CHECKOUT / name, dest / name)
        shutil.copytree(CHECKOUT / "src", dest / "src", dirs_exist_ok=True)
        (dest / "Cargo.toml").write_text(standalone_manifest((CHECKOUT / "Cargo.toml").read_text()))


class BuildSharedLibrary(build_rust):
    """Name the library as the loader (keyval/_native.py) expects it, not
    with a CPython extension suffix: it is loaded by ctypes, not imported."""

    def get_dylib_ext_path(self, ext: RustExtension, target_fname: str) -> str:
        path = Path(super().get_dylib_ext_path(ext, target_fname))
        return str(path.parent / LIB_NAME)


class PlatformWheel(bdist_wheel):
    """Tag the wheel py3-none-<platform>: it holds a native library but no
    CPython extension, so one wheel serves every Python 3 on a platform."""

    def get_tag(self) -> tuple[str, str, str]:
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(
    rust_extensions=[
        RustExtension(
            "keyval.libkeyval",
            path=crate_manifest(),
            binding=Binding.NoBinding,
            # The C ABI is behind the crate's `capi` feature.
            features=["capi"],
            py_limited_api=False,
            # The repository's Cargo.lock pins every version. In an sdist it
            # is the workspace's lock and cargo prunes the entries of the
            # other members, which --locked would refuse.
            args=[] if (VENDORED / "Cargo.toml").is_file() else ["--locked"],
        )
    ],
    cmdclass={"sdist": SdistWithCrate, "build_rust": BuildSharedLibrary, "bdist_wheel": PlatformWheel},
)
