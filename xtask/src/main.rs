//! Repository build steps that cargo does not do (run from the Makefile).
//!
//! - `cargo run -p xtask -- header`: regenerate `include/keyval.h` from the
//!   C ABI in `src/ffi/` with cbindgen (configured in `cbindgen.toml`).
//! - `cargo run -p xtask -- header --check`: fail if the committed header
//!   differs from what would be generated, or names anything outside
//!   `kv_`/`KV_`.
//!
//! The header is committed, so building the crate (or any Rust program
//! that depends on it) never runs cbindgen.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository")
        .to_path_buf();
    let r = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["header"] => header(&root, false),
        ["header", "--check"] => header(&root, true),
        _ => Err("usage: xtask header [--check]".to_string()),
    };
    match r {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The crate's version, from its Cargo.toml (`version = "x.y.z"`).
fn crate_version(root: &Path) -> Result<(u32, u32, u32, String), String> {
    let toml = std::fs::read_to_string(root.join("Cargo.toml")).map_err(|e| e.to_string())?;
    let v = toml
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|l| l.strip_suffix('"'))
        .ok_or("no version in Cargo.toml")?
        .to_string();
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b, c) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    Ok((a, b, c, v))
}

fn generate(root: &Path) -> Result<Vec<u8>, String> {
    let (major, minor, patch, full) = crate_version(root)?;
    let number = major * 10000 + minor * 100 + patch;
    let versions = format!(
        "\n/** Version of this header; compare with kv_version() / kv_version_number(). */\n\
         #define KV_VERSION_MAJOR {major}\n#define KV_VERSION_MINOR {minor}\n#define KV_VERSION_PATCH {patch}\n\
         #define KV_VERSION_STRING \"{full}\"\n#define KV_VERSION_NUMBER {number}\n"
    );
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
        .map_err(|e| format!("cbindgen.toml: {e}"))?;
    let bindings = cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .with_after_include(versions)
        .generate()
        .map_err(|e| format!("cbindgen: {e}"))?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    Ok(out)
}

/// Names the header defines (macros, typedef'd structs and enums).
fn foreign_names(header: &str) -> Vec<String> {
    header
        .lines()
        .filter_map(|l| {
            let name = if let Some(r) = l.strip_prefix("#define ") {
                r.split_whitespace().next()
            } else if let Some(r) = l.strip_prefix("} ") {
                r.strip_suffix(';')
            } else {
                None
            }?;
            let ok = name.starts_with("kv_") || name.starts_with("KV_") || name == "KEYVAL_H";
            (!ok).then(|| name.to_string())
        })
        .collect()
}

fn header(root: &Path, check: bool) -> Result<String, String> {
    let path = root.join("include/keyval.h");
    let fresh = generate(root)?;
    let bad = foreign_names(&String::from_utf8_lossy(&fresh));
    if !bad.is_empty() {
        return Err(format!(
            "the generated header exports names outside kv_/KV_: {bad:?}"
        ));
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    if check {
        if committed != fresh {
            return Err(format!(
                "{} is stale: run `make header` and commit it",
                path.display()
            ));
        }
        return Ok("header-check: include/keyval.h is up to date".into());
    }
    if committed != fresh {
        std::fs::write(&path, &fresh).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(format!("wrote {}", path.display()));
    }
    Ok(format!("{} unchanged", path.display()))
}
