//! Generates `include/keyval.h` from the C ABI in `src/ffi/` with cbindgen
//! (configured in `cbindgen.toml`). The header is committed; `make
//! header-check` fails when the committed copy differs from what this
//! produces. cbindgen rewrites the file only when its contents change.

use std::env;
use std::path::PathBuf;

/// Whether this build may run the tests that need root: real power cuts on
/// an ext4 loop device (`tests/power_cut.rs`) and a full tmpfs
/// (`tests/enospc.rs`). Decided here, at build time, so that a machine
/// without them reports those tests as *ignored* in the runner's summary
/// instead of passing them silently.
fn root_tests_possible() -> bool {
    let euid_is_root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                .map(|u| u == "0")
        })
        .unwrap_or(false);
    let have = |tool: &str| {
        ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .iter()
            .any(|d| std::path::Path::new(d).join(tool).exists())
    };
    euid_is_root
        && ["losetup", "mkfs.ext4", "e2fsck", "mount", "umount"]
            .iter()
            .all(|t| have(t))
        && std::path::Path::new("/dev/loop-control").exists()
}

/// The shared library's ABI version (its SONAME is `libkeyval.so.N`).
/// Keep in step with `SOVERSION` in the Makefile.
const SOVERSION: u32 = 0;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    println!("cargo::rustc-check-cfg=cfg(keyval_root_tests)");
    if root_tests_possible() {
        println!("cargo::rustc-cfg=keyval_root_tests");
    }
    // A versioned shared library: libkeyval.so.0 is the name programs
    // record at link time, so `make install` can install
    // libkeyval.so.<version> with the usual symlinks. The number is the
    // ABI's: it changes only when a compiled program would break.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libkeyval.so.{SOVERSION}");
    }
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    let include = crate_dir.join("include");
    if !include.is_dir() {
        // Built from a package without the header directory: nothing to do.
        return;
    }
    let v = |k: &str| env::var(k).expect("cargo version variable");
    let (major, minor, patch) = (
        v("CARGO_PKG_VERSION_MAJOR"),
        v("CARGO_PKG_VERSION_MINOR"),
        v("CARGO_PKG_VERSION_PATCH"),
    );
    let number: u32 = major.parse::<u32>().unwrap_or(0) * 10000
        + minor.parse::<u32>().unwrap_or(0) * 100
        + patch.parse::<u32>().unwrap_or(0);
    let versions = format!(
        "\n/** Version of this header; compare with kv_version() / kv_version_number(). */\n\
         #define KV_VERSION_MAJOR {major}\n#define KV_VERSION_MINOR {minor}\n#define KV_VERSION_PATCH {patch}\n\
         #define KV_VERSION_STRING \"{}\"\n#define KV_VERSION_NUMBER {number}\n",
        v("CARGO_PKG_VERSION")
    );
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("read cbindgen.toml");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .with_after_include(versions)
        .generate()
        .expect("cbindgen could not generate include/keyval.h")
        .write_to_file(include.join("keyval.h"));
}
