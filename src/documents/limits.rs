//! The document layer's limits, and the one grammar of a field path.
//!
//! Every request that reaches the document layer may come from a network
//! client (go-db's engine sits behind an HTTP API), so each of its
//! dimensions is bounded before any work is done under the document write
//! lock, and nothing is stored that a later read could not parse. Each
//! limit is refused with [`Error::InvalidArgument`] naming it; the table
//! is in `docs/documents.md` and `include/keyval.h`.
//!
//! | limit | value | where |
//! |---|---|---|
//! | [`MAX_DEPTH`] | 100 levels | a stored document (also after an update), a filter's nesting |
//! | [`MAX_PATH_SEGMENTS`] | 100 | a field path in a filter, update, sort, projection or index |
//! | [`MAX_PATH_BYTES`] | 4096 bytes | the same paths (an index path: [`super::MAX_INDEX_PATH`]) |
//! | [`MAX_UPDATE_PATHS`] | 10,000 | field paths in one update (all its operators together) |
//! | [`MAX_IN_VALUES`] | 10,000 | values in one `$in` or `$nin` list |
//!
//! The depth limit is MongoDB's (100 levels); the JSON parser itself stops
//! at 128, so every document KeyVal stores stays readable.

use crate::error::{Error, Result};
use serde_json::Value;

/// Deepest nesting of a document: the document object is level 1, each
/// object or array inside it one more.
pub const MAX_DEPTH: usize = 100;
/// Most segments in a dotted field path.
pub const MAX_PATH_SEGMENTS: usize = 100;
/// Longest field path, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;
/// Most field paths one update may name (`$rename` targets included).
pub const MAX_UPDATE_PATHS: usize = 10_000;
/// Most values in one `$in` or `$nin` list.
pub const MAX_IN_VALUES: usize = 10_000;

/// Check a dotted field path (`a.b.0.c`) as filters, updates, sorts and
/// projections take it: 1 to [`MAX_PATH_BYTES`] bytes, at most
/// [`MAX_PATH_SEGMENTS`] segments, no empty segment (`a..b`, `.a`, `a.`),
/// no segment starting with `$` (operators are not field names). `what`
/// names the caller in the error.
///
/// Errors: [`Error::InvalidArgument`].
pub fn check_field_path(path: &str, what: &str) -> Result<()> {
    if path.is_empty() || path.len() > MAX_PATH_BYTES {
        return Err(Error::InvalidArgument(format!(
            "{what}: a field path of {} bytes (1 to {MAX_PATH_BYTES} allowed)",
            path.len()
        )));
    }
    let mut n = 0;
    for seg in path.split('.') {
        n += 1;
        if n > MAX_PATH_SEGMENTS {
            return Err(Error::InvalidArgument(format!(
                "{what}: field path with more than {MAX_PATH_SEGMENTS} segments"
            )));
        }
        if seg.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{what}: field path {:?} has an empty segment",
                shorten(path)
            )));
        }
        if seg.starts_with('$') {
            return Err(Error::InvalidArgument(format!(
                "{what}: field path {:?} has a segment starting with '$'",
                shorten(path)
            )));
        }
    }
    Ok(())
}

/// Check a document about to be stored: nested at most [`MAX_DEPTH`]
/// levels, and no member name starting with `$` at any level (no filter,
/// update or index could name it). Iterative: a document nested a million
/// levels deep costs no stack.
///
/// Errors: [`Error::InvalidArgument`].
pub fn check_document(doc: &Value) -> Result<()> {
    let mut stack: Vec<(&Value, usize)> = vec![(doc, 1)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Object(o) => {
                if let Some(k) = o.keys().find(|k| k.starts_with('$')) {
                    return Err(Error::InvalidArgument(format!(
                        "document: field name {:?} starts with '$' (reserved for operators)",
                        shorten(k)
                    )));
                }
                Box::new(o.values())
            }
            Value::Array(a) => Box::new(a.iter()),
            _ => continue,
        };
        if depth > MAX_DEPTH {
            return Err(Error::InvalidArgument(format!(
                "document: nested more than {MAX_DEPTH} levels deep"
            )));
        }
        stack.extend(
            children
                .filter(|c| c.is_object() || c.is_array())
                .map(|c| (c, depth + 1)),
        );
    }
    Ok(())
}

/// At most 80 characters of `s`, for messages.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        for ok in ["a", "a.b", "tags.0", "_id"] {
            check_field_path(ok, "t").expect(ok);
        }
        let long = vec!["a"; MAX_PATH_SEGMENTS + 1].join(".");
        for bad in ["", "a..b", ".a", "a.", "$a", "a.$b", long.as_str()] {
            assert!(check_field_path(bad, "t").is_err(), "{bad}");
        }
        check_field_path(&vec!["a"; MAX_PATH_SEGMENTS].join("."), "t").expect("at the limit");
    }

    #[test]
    fn documents() {
        fn nest(n: usize) -> Value {
            let mut v = json!(1);
            for _ in 0..n {
                v = json!({ "a": v });
            }
            v
        }
        check_document(&nest(MAX_DEPTH)).expect("at the limit");
        assert!(check_document(&nest(MAX_DEPTH + 1)).is_err());
        assert!(check_document(&json!({"a": [{"$x": 1}]})).is_err());
        check_document(&json!({"a": [[1, {"b": "$x"}]]})).expect("$ in a value is fine");
    }
}
