//! The one total order over JSON values, as an order-preserving byte
//! encoding, and dotted-path lookup.
//!
//! Sorting, range filters, equality, index keys and cursors all compare
//! values by [`encode`]: two values are equal exactly when their encodings
//! are, and order as their encodings do (bytewise). The order is:
//!
//! ```text
//! missing < null < false < true < numbers < strings < arrays < objects
//! ```
//!
//! - numbers compare by value as IEEE-754 doubles (`30 == 30.0`, `-0 == 0`;
//!   integers beyond 2^53 lose precision in comparisons and index keys, not
//!   in the stored document);
//! - strings compare bytewise on their UTF-8 (as Rust and SQLite's BINARY
//!   collation do);
//! - arrays compare element by element, a prefix first;
//! - objects compare key by key (keys in sorted order), then value by value.
//!
//! Encoding (tag byte, then the payload):
//!
//! | tag | value | payload |
//! |---|---|---|
//! | 0x00 | missing | none (only as a whole key, never inside arrays) |
//! | 0x01 | null | none |
//! | 0x02 | false | none |
//! | 0x03 | true | none |
//! | 0x04 | number | 8 bytes: the f64's bits, sign bit flipped for positives and every bit flipped for negatives (big-endian) |
//! | 0x05 | string | the UTF-8 with each 0x00 written 0x00 0xFF, then 0x00 0x01 |
//! | 0x06 | array | each element's encoding, then 0x00 |
//! | 0x07 | object | per key (sorted): the key's string encoding (tag included), the value's encoding; then 0x00 |
//!
//! Every element and object key starts with a byte ≥ 0x01, so the 0x00
//! terminators sort shorter arrays and objects first, and one encoding is
//! never a proper prefix of another's first value: an encoding can be
//! followed by more bytes (an index key is value then document id) without
//! changing the order.

use serde_json::Value;

/// Tag of a missing value.
pub const TAG_MISSING: u8 = 0x00;
const TAG_NULL: u8 = 0x01;
const TAG_FALSE: u8 = 0x02;
const TAG_TRUE: u8 = 0x03;
/// Tag of a number.
pub const TAG_NUMBER: u8 = 0x04;
/// Tag of a string.
pub const TAG_STRING: u8 = 0x05;
const TAG_ARRAY: u8 = 0x06;
const TAG_OBJECT: u8 = 0x07;

/// The type class of a value: range operators (`$gt` ...) only match
/// values of the bound's class, as in MongoDB.
pub fn class(v: &Value) -> u8 {
    match v {
        Value::Null => TAG_NULL,
        Value::Bool(_) => TAG_FALSE,
        Value::Number(_) => TAG_NUMBER,
        Value::String(_) => TAG_STRING,
        Value::Array(_) => TAG_ARRAY,
        Value::Object(_) => TAG_OBJECT,
    }
}

/// One past the last first byte of a class's encodings.
pub fn class_end(class: u8) -> u8 {
    if class == TAG_FALSE {
        TAG_TRUE + 1
    } else {
        class + 1
    }
}

/// The number as an f64 with -0 folded into 0.
fn number(n: &serde_json::Number) -> f64 {
    let f = n.as_f64().unwrap_or(0.0);
    if f == 0.0 {
        0.0
    } else {
        f
    }
}

/// Append the string payload of `s` (0x00 escaped as 0x00 0xFF, then the
/// 0x00 0x01 terminator; no tag): prefix-free and order-preserving.
pub fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Append the encoding of `v` to `out`.
pub fn encode_into(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(TAG_NULL),
        Value::Bool(false) => out.push(TAG_FALSE),
        Value::Bool(true) => out.push(TAG_TRUE),
        Value::Number(n) => {
            out.push(TAG_NUMBER);
            let bits = number(n).to_bits();
            let ordered = if bits >> 63 == 0 {
                bits | (1 << 63)
            } else {
                !bits
            };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        Value::String(s) => {
            out.push(TAG_STRING);
            push_string(out, s.as_bytes());
        }
        Value::Array(a) => {
            out.push(TAG_ARRAY);
            for e in a {
                encode_into(out, e);
            }
            out.push(0);
        }
        Value::Object(o) => {
            out.push(TAG_OBJECT);
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            for k in keys {
                out.push(TAG_STRING);
                push_string(out, k.as_bytes());
                encode_into(out, &o[k]);
            }
            out.push(0);
        }
    }
}

/// `a` against `b` in the order of [`encode`], without encoding scalars
/// (numbers as their folded doubles, strings bytewise: the string payload
/// keeps the bytewise order; arrays and objects by their encodings).
pub fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    let tag = |v: &Value| match v {
        Value::Bool(true) => TAG_TRUE,
        other => class(other),
    };
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number(x).total_cmp(&number(y)),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        _ if tag(a) != tag(b) => tag(a).cmp(&tag(b)),
        (Value::Array(_), _) | (Value::Object(_), _) => encode(Some(a)).cmp(&encode(Some(b))),
        _ => std::cmp::Ordering::Equal,
    }
}

/// The encoding of `v` (`None`: missing).
pub fn encode(v: Option<&Value>) -> Vec<u8> {
    let mut out = Vec::new();
    match v {
        Some(v) => encode_into(&mut out, v),
        None => out.push(TAG_MISSING),
    }
    out
}

/// Every value the dotted `path` reaches in `doc`: objects are entered by
/// key; an array met on the way is entered element by element (each
/// element object continues the path), as MongoDB does. A numeric segment
/// also indexes into an array (`tags.0`). Empty when nothing is reached.
pub fn resolve<'a>(doc: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut cur = vec![doc];
    for seg in path.split('.') {
        let mut next = Vec::new();
        for v in cur {
            step(v, seg, &mut next);
        }
        if next.is_empty() {
            return next;
        }
        cur = next;
    }
    cur
}

fn step<'a>(v: &'a Value, seg: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(o) => {
            if let Some(x) = o.get(seg) {
                out.push(x);
            }
        }
        Value::Array(a) => {
            if let Ok(i) = seg.parse::<usize>() {
                if let Some(x) = a.get(i) {
                    out.push(x);
                    return;
                }
            }
            for e in a {
                if let Value::Object(o) = e {
                    if let Some(x) = o.get(seg) {
                        out.push(x);
                    }
                }
            }
        }
        _ => {}
    }
}

/// The values a filter compares against at `path`: every reached value,
/// and the elements of every reached array.
pub fn candidates<'a>(doc: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for v in resolve(doc, path) {
        out.push(v);
        if let Value::Array(a) = v {
            out.extend(a.iter());
        }
    }
    out
}

/// The index keys' value parts for `path` in `doc`: each distinct scalar
/// reached (arrays contribute their elements; an empty array itself), or
/// the missing marker if nothing is reached. Returns the encodings and
/// whether the document is multikey (more than one entry, or an array).
pub fn index_values(doc: &Value, path: &str) -> (Vec<Vec<u8>>, bool) {
    let reached = resolve(doc, path);
    let mut multikey = reached.len() > 1;
    let mut out: Vec<Vec<u8>> = Vec::new();
    for v in &reached {
        match v {
            Value::Array(a) if !a.is_empty() => {
                multikey = true;
                out.extend(a.iter().map(|e| encode(Some(e))));
            }
            _ => out.push(encode(Some(v))),
        }
    }
    if out.is_empty() {
        out.push(encode(None));
    }
    out.sort();
    out.dedup();
    (out, multikey)
}

/// The sort key of `doc` at `path`: the encoding of the value reached (the
/// first one, if a path through arrays reaches several), or missing.
pub fn sort_key(doc: &Value, path: &str) -> Vec<u8> {
    encode(resolve(doc, path).first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compare_agrees_with_the_encoding() {
        let vals = [
            json!(null),
            json!(false),
            json!(true),
            json!(-1.5),
            json!(-0.0),
            json!(0),
            json!(2),
            json!(2.0),
            json!(1e300),
            json!(""),
            json!("a"),
            json!("a\u{0}"),
            json!("a\u{1}"),
            json!("b"),
            json!([]),
            json!([1]),
            json!([1, 2]),
            json!({}),
            json!({"a": 1}),
            json!({"a": 1, "b": 0}),
            json!({"b": 0}),
        ];
        for a in &vals {
            for b in &vals {
                assert_eq!(
                    compare(a, b),
                    encode(Some(a)).cmp(&encode(Some(b))),
                    "{a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn the_encoding_orders_as_documented() {
        let ordered = [
            None,
            Some(json!(null)),
            Some(json!(false)),
            Some(json!(true)),
            Some(json!(-1e300)),
            Some(json!(-2)),
            Some(json!(-0.5)),
            Some(json!(0)),
            Some(json!(0.25)),
            Some(json!(30)),
            Some(json!(1e300)),
            Some(json!("")),
            Some(json!("a")),
            Some(json!("a\u{0}")),
            Some(json!("ab")),
            Some(json!("b")),
            Some(json!([])),
            Some(json!([1])),
            Some(json!([1, 2])),
            Some(json!([2])),
            Some(json!({})),
            Some(json!({"a": 1})),
            Some(json!({"a": 1, "b": 0})),
            Some(json!({"b": 0})),
        ];
        for w in ordered.windows(2) {
            assert!(
                encode(w[0].as_ref()) < encode(w[1].as_ref()),
                "{:?} < {:?}",
                w[0],
                w[1]
            );
        }
        assert_eq!(encode(Some(&json!(30))), encode(Some(&json!(30.0))));
        assert_eq!(encode(Some(&json!(-0.0))), encode(Some(&json!(0))));
    }

    #[test]
    fn paths_enter_objects_and_arrays() {
        let d = json!({"a": {"b": [{"c": 1}, {"c": 2}, 3]}, "t": ["x", "y"]});
        assert_eq!(resolve(&d, "a.b.c"), vec![&json!(1), &json!(2)]);
        assert_eq!(resolve(&d, "t.1"), vec![&json!("y")]);
        assert!(resolve(&d, "a.z").is_empty());
        let (vals, multi) = index_values(&d, "t");
        assert!(multi);
        assert_eq!(vals.len(), 2);
        assert_eq!(index_values(&d, "nope").0, vec![vec![TAG_MISSING]]);
    }
}
