"""Build hook: compile the Rust library with cargo and bundle libkeyval.so
inside the package, so `pip install ./bindings/python` is all a user needs.

The Rust sources are found at KEYVAL_SOURCE_DIR, or two directories above
this file (the repository layout)."""
import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution


def source_root() -> Path:
    env = os.environ.get("KEYVAL_SOURCE_DIR")
    root = Path(env) if env else Path(__file__).resolve().parents[2]
    if not (root / "Cargo.toml").is_file():
        raise SystemExit(f"keyval: cannot find the Rust sources (Cargo.toml) at {root}; set KEYVAL_SOURCE_DIR")
    return root


class BuildWithCargo(build_py):
    def run(self) -> None:
        super().run()
        root = source_root()
        subprocess.run(["cargo", "build", "--release", "--lib", "--locked"], cwd=root, check=True)
        target = Path(os.environ.get("CARGO_TARGET_DIR", root / "target"))
        lib = target / "release" / "libkeyval.so"
        dest = Path(self.build_lib) / "keyval"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib, dest / "libkeyval.so")


class BinaryDistribution(Distribution):
    """The wheel holds a native library: tag it for this platform."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildWithCargo}, distclass=BinaryDistribution)
