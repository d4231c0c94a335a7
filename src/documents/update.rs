//! Document updates: JSON merge patch (RFC 7396) and update operators.
//!
//! Operators (each takes an object of dotted paths):
//! `$set` (creating missing parent objects), `$unset`, `$inc` and `$mul`
//! (numbers only; a missing field starts at 0), `$min` and `$max` (in the
//! order of [`super::order`]; a missing field takes the value), `$rename`
//! (the value is the new path), `$push` (appends; a missing field becomes
//! a one-element array), `$pull` (removes every element equal to the
//! value). Changing `_id` is refused, and so is an update whose operators
//! touch one path twice or a path and its parent (as MongoDB refuses
//! them), so the order of the operators never matters.

use super::limits::{check_field_path, MAX_UPDATE_PATHS};
use super::order::encode;
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

/// Apply an RFC 7396 merge patch to `target`: object members are merged
/// recursively, `null` removes a member, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The parent object of the last segment of `path` in `doc` and that
/// segment, creating missing objects on the way when `create` is set.
fn parent<'a>(
    doc: &'a mut Value,
    path: &'a str,
    create: bool,
) -> Result<Option<(&'a mut Map<String, Value>, &'a str)>> {
    let mut segs: Vec<&str> = path.split('.').collect();
    let last = segs.pop().unwrap_or_default();
    if last.is_empty() || segs.iter().any(|s| s.is_empty()) {
        return Err(bad(format!("bad field path {path:?}")));
    }
    let mut cur = doc;
    for s in segs {
        let Value::Object(o) = cur else {
            return Err(bad(format!(
                "{path:?} goes through a value that is not an object"
            )));
        };
        if !o.contains_key(s) {
            if !create {
                return Ok(None);
            }
            o.insert(s.to_string(), Value::Object(Map::new()));
        }
        cur = o.get_mut(s).ok_or_else(|| bad("path vanished"))?;
    }
    match cur {
        Value::Object(o) => Ok(Some((o, last))),
        _ if !create => Ok(None),
        _ => Err(bad(format!(
            "{path:?} goes through a value that is not an object"
        ))),
    }
}

fn arith(op: &str, old: Option<&Value>, by: &Value, path: &str) -> Result<Value> {
    let zero = Value::from(0);
    let old = old.unwrap_or(&zero);
    let (Value::Number(a), Value::Number(b)) = (old, by) else {
        return Err(bad(format!("{op} on {path:?} needs numbers")));
    };
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        let r = if op == "$inc" {
            x.checked_add(y)
        } else {
            x.checked_mul(y)
        };
        if let Some(r) = r {
            return Ok(Value::from(r));
        }
    }
    let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
    let r = if op == "$inc" { x + y } else { x * y };
    serde_json::Number::from_f64(r)
        .map(Value::Number)
        .ok_or_else(|| bad(format!("{op} on {path:?} gives a non-finite number")))
}

/// Apply update operators `ops` (an object such as
/// `{"$set": {"a.b": 1}, "$inc": {"n": 2}}`) to `doc`.
///
/// Errors: [`Error::InvalidArgument`]: not an object, an unknown operator,
/// an operator's argument that is not an object, a bad field path (see
/// [`check_field_path`]), more than [`MAX_UPDATE_PATHS`] paths, two paths
/// that conflict, a path through a non-object, `$inc`/`$mul` on a
/// non-number, `$push`/`$pull` on a non-array, a path naming `_id`. `doc` may be partly changed on error:
/// callers apply updates to a copy.
pub fn apply_ops(doc: &mut Value, ops: &Value) -> Result<()> {
    let Value::Object(ops) = ops else {
        return Err(bad("update operators are a JSON object"));
    };
    if ops.is_empty() {
        return Err(bad("no update operator given"));
    }
    let mut paths: Vec<&str> = Vec::new();
    for (op, args) in ops {
        let Value::Object(args) = args else {
            return Err(bad(format!("{op} takes an object of field paths")));
        };
        for (p, arg) in args {
            paths.push(p);
            if op == "$rename" {
                if let Value::String(to) = arg {
                    paths.push(to);
                }
            }
        }
    }
    if paths.len() > MAX_UPDATE_PATHS {
        return Err(bad(format!(
            "an update names {} field paths (at most {MAX_UPDATE_PATHS})",
            paths.len()
        )));
    }
    for p in &paths {
        check_field_path(p, "update")?;
    }
    // Two paths conflict when they are equal or one is a parent of the
    // other. Each path's parents are looked up among the paths seen, and
    // each path among the parents seen: O(total segments), not pairwise.
    let mut seen: HashSet<&str> = HashSet::with_capacity(paths.len());
    let mut parents: HashMap<&str, &str> = HashMap::new();
    for p in &paths {
        if let Some(child) = parents.get(p) {
            return Err(bad(format!("update paths {p:?} and {child:?} conflict")));
        }
        for (i, _) in p.match_indices('.') {
            let parent = &p[..i];
            if seen.contains(parent) {
                return Err(bad(format!("update paths {parent:?} and {p:?} conflict")));
            }
            parents.entry(parent).or_insert(p);
        }
        if !seen.insert(p) {
            return Err(bad(format!("update paths {p:?} and {p:?} conflict")));
        }
    }
    for (op, args) in ops {
        let Value::Object(args) = args else {
            return Err(bad(format!("{op} takes an object of field paths")));
        };
        for (path, arg) in args {
            if path == "_id" || path.starts_with("_id.") {
                return Err(bad("_id cannot be changed"));
            }
            match op.as_str() {
                "$set" => {
                    if let Some((o, k)) = parent(doc, path, true)? {
                        o.insert(k.to_string(), arg.clone());
                    }
                }
                "$unset" => {
                    if let Some((o, k)) = parent(doc, path, false)? {
                        o.remove(k);
                    }
                }
                "$inc" | "$mul" => {
                    if let Some((o, k)) = parent(doc, path, true)? {
                        let v = arith(op, o.get(k), arg, path)?;
                        o.insert(k.to_string(), v);
                    }
                }
                "$min" | "$max" => {
                    if let Some((o, k)) = parent(doc, path, true)? {
                        let replace = match o.get(k) {
                            None => true,
                            Some(old) => {
                                let (n, c) = (encode(Some(arg)), encode(Some(old)));
                                if op == "$min" {
                                    n < c
                                } else {
                                    n > c
                                }
                            }
                        };
                        if replace {
                            o.insert(k.to_string(), arg.clone());
                        }
                    }
                }
                "$rename" => {
                    let Value::String(to) = arg else {
                        return Err(bad("$rename takes new path strings"));
                    };
                    if to == "_id" || to.starts_with("_id.") {
                        return Err(bad("_id cannot be changed"));
                    }
                    let moved = match parent(doc, path, false)? {
                        Some((o, k)) => o.remove(k),
                        None => None,
                    };
                    if let Some(v) = moved {
                        if let Some((o, k)) = parent(doc, to, true)? {
                            o.insert(k.to_string(), v);
                        }
                    }
                }
                "$push" | "$pull" => {
                    if let Some((o, k)) = parent(doc, path, op == "$push")? {
                        match (o.get_mut(k), op.as_str()) {
                            (None, "$push") => {
                                o.insert(k.to_string(), Value::Array(vec![arg.clone()]));
                            }
                            (None, _) => {}
                            (Some(Value::Array(a)), "$push") => a.push(arg.clone()),
                            (Some(Value::Array(a)), _) => {
                                let e = encode(Some(arg));
                                a.retain(|x| encode(Some(x)) != e);
                            }
                            _ => {
                                return Err(bad(format!("{op} on {path:?}, which is not an array")))
                            }
                        }
                    }
                }
                other => return Err(bad(format!("unknown update operator {other}"))),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut d = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut d, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(d, json!({"a": "z", "c": {"d": "e"}}));
    }

    #[test]
    fn operators() {
        let mut d = json!({"_id": "1", "n": 1, "t": [1, 2, 1], "o": {"x": 5}, "w": 7});
        apply_ops(
            &mut d,
            &json!({
                "$inc": {"n": 2, "m": 1.5},
                "$mul": {"o.x": 2},
                "$set": {"p.q": true},
                "$push": {"u": "new"},
                "$pull": {"t": 1},
                "$min": {"o.y": 3},
                "$max": {"k": 100},
                "$rename": {"w": "r"},
                "$unset": {"nope": ""}
            }),
        )
        .expect("apply");
        assert_eq!(
            d,
            json!({"_id": "1", "n": 3, "m": 1.5, "k": 100, "t": [2], "u": ["new"], "o": {"x": 10, "y": 3}, "p": {"q": true}, "r": 7})
        );
        for bad in [
            json!({"$set": {"_id": 2}}),
            json!({"$inc": {"t": 1}}),
            json!({"$push": {"n": 1}}),
            json!({"$nope": {"a": 1}}),
            json!({}),
            json!({"$set": 1}),
            json!({"$set": {"a": 1}, "$inc": {"a": 1}}),
            json!({"$set": {"o": 1, "o.x": 2}}),
            json!({"$rename": {"n": "o.z"}, "$set": {"o": 1}}),
        ] {
            assert!(apply_ops(&mut d.clone(), &bad).is_err(), "{bad}");
        }
    }
}
