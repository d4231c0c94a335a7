//! Generates `include/keyval.h` from the C ABI in `src/ffi/` with cbindgen
//! (configured in `cbindgen.toml`). The header is committed; `make
//! header-check` fails when the committed copy differs from what this
//! produces. cbindgen rewrites the file only when its contents change.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
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
