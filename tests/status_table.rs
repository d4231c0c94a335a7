//! The status table exists once (`keyval::STATUSES`): the C header's
//! `kv_status`, the Python binding's exception codes and `Error::code` must
//! agree with it.

use keyval::{Error, ErrorKind, STATUSES};
use std::collections::BTreeMap;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `KV_NAME = N` lines of the header's `kv_status` enum.
fn header_statuses() -> BTreeMap<String, i32> {
    let h = std::fs::read_to_string(root().join("include/keyval.h")).expect("read header");
    let end = h.find("} kv_status;").expect("kv_status in header");
    let start = h[..end]
        .rfind("typedef enum {")
        .expect("start of kv_status");
    let body = &h[start..end];
    body.lines()
        .filter_map(|l| {
            let (name, code) = l.trim().trim_end_matches(',').split_once(" = ")?;
            Some((name.to_string(), code.parse().ok()?))
        })
        .collect()
}

#[test]
fn header_kv_status_is_the_status_table() {
    let header = header_statuses();
    let table: BTreeMap<String, i32> = STATUSES
        .iter()
        .map(|s| (s.c_name.to_string(), s.code))
        .collect();
    assert_eq!(header, table);
    for (i, s) in STATUSES.iter().enumerate() {
        assert_eq!(s.code, i as i32, "rows in code order");
        assert!(!s.message.to_bytes().is_empty());
    }
}

#[test]
fn every_error_kind_has_its_row() {
    assert_eq!(
        STATUSES.iter().filter(|s| s.kind.is_some()).count(),
        ErrorKind::ALL.len()
    );
    for k in ErrorKind::ALL {
        let s = k.status();
        assert_eq!(s.code, k.code());
        assert_eq!(s.label, k.label());
        assert_eq!(s.kind, Some(*k));
    }
    assert_eq!(Error::Closed.code(), ErrorKind::Closed.code());
    assert_eq!(
        Error::InvalidArgument("x".into()).kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn python_exception_codes_are_the_status_table() {
    let py = std::fs::read_to_string(root().join("bindings/python/keyval/errors.py"))
        .expect("read errors.py");
    // Each exception class names its C status in its docstring and sets
    // `code = N` (or reads it from the table the binding generates).
    let mut codes = Vec::new();
    for line in py.lines() {
        if let Some(c) = line.trim().strip_prefix("code = ") {
            if let Ok(c) = c.parse::<i32>() {
                codes.push(c);
            }
        }
    }
    codes.sort_unstable();
    // Every status but KV_OK (success raises nothing).
    let table: Vec<i32> = STATUSES
        .iter()
        .map(|s| s.code)
        .filter(|c| *c != 0)
        .collect();
    assert_eq!(codes, table, "one Python exception per error status code");
}
