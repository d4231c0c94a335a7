//! Build script: give the shared library its SONAME. (The C header is not
//! generated here: it is committed, and `make header` regenerates it with
//! `cargo run -p xtask -- header`, so no Rust dependent runs cbindgen.
//! Whether the root-only tests can run is decided by the tests at run
//! time.)

use std::env;

/// The shared library's ABI version (its SONAME is `libkeyval.so.N`).
/// Keep in step with `SOVERSION` in the Makefile.
const SOVERSION: u32 = 0;

fn main() {
    // A versioned shared library: libkeyval.so.0 is the name programs
    // record at link time, so `make install` can install
    // libkeyval.so.<version> with the usual symlinks. The number is the
    // ABI's: it changes only when a compiled program would break.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libkeyval.so.{SOVERSION}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
