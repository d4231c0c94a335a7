//! The filter language: a MongoDB-style subset, parsed from JSON.
//!
//! ```text
//! {"age": 30}                       implicit equality
//! {"age": {"$gte": 18, "$lt": 65}}  operators on one path (all must hold)
//! {"a.b": {"$in": [1, 2]}}          dotted paths into nested objects
//! {"$or": [{...}, {...}]}           $and, $or: lists of filters
//! {"$not": {...}}                   negation of a filter
//! {"age": {"$not": {"$gt": 5}}}     negation of a path's operators
//! ```
//!
//! Operators: `$eq $ne $gt $gte $lt $lte $in $nin $exists $not`. A path
//! matches when any value it reaches matches (an array field matches when
//! the array itself or any element does); `$ne` and `$nin` hold when no
//! reached value is equal. `$gt`-style ranges compare within one type
//! class (numbers with numbers, strings with strings, ...), in the order of
//! [`super::order`]. `{"f": null}` also matches documents without `f`.

use super::limits::{check_field_path, MAX_DEPTH, MAX_IN_VALUES};
use super::order::{self, class, class_end, encode};
use crate::error::{Error, Result};
use serde_json::Value;
use std::ops::Bound;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// All must match (also the top level's several keys).
    And(Vec<Filter>),
    /// At least one must match.
    Or(Vec<Filter>),
    /// The filter must not match.
    Not(Box<Filter>),
    /// Conditions on one dotted path, all of which must hold.
    Path(String, Vec<Cond>),
}

/// A condition on the values at one path.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// Equal to (`$eq`, or a plain value).
    Eq(Value),
    /// Not equal to.
    Ne(Value),
    /// Greater than, within the value's type class.
    Gt(Value),
    /// Greater than or equal.
    Gte(Value),
    /// Less than.
    Lt(Value),
    /// Less than or equal.
    Lte(Value),
    /// Equal to one of.
    In(Vec<Value>),
    /// Equal to none of.
    Nin(Vec<Value>),
    /// The path reaches (true) or does not reach (false) a value.
    Exists(bool),
    /// None of these conditions all hold.
    Not(Vec<Cond>),
}

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(format!("filter: {}", msg.into()))
}

/// Parse a filter from its JSON form. `null` and `{}` match everything.
///
/// Errors: [`Error::InvalidArgument`] naming the offending part (not an
/// object, an unknown operator, an object mixing operators and field
/// names, `$in` without an array or with more than [`MAX_IN_VALUES`]
/// values, a bad field path (see [`check_field_path`]), nesting deeper
/// than [`MAX_DEPTH`], ...).
pub fn parse(v: &Value) -> Result<Filter> {
    parse_at(v, 1)
}

fn parse_at(v: &Value, depth: usize) -> Result<Filter> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("nested more than {MAX_DEPTH} levels deep")));
    }
    match v {
        Value::Null => Ok(Filter::And(Vec::new())),
        Value::Object(o) => {
            let mut all = Vec::with_capacity(o.len());
            for (k, v) in o {
                all.push(match k.as_str() {
                    "$and" | "$or" => {
                        let Value::Array(list) = v else {
                            return Err(bad(format!("{k} takes an array of filters")));
                        };
                        let fs = list
                            .iter()
                            .map(|f| parse_at(f, depth + 1))
                            .collect::<Result<Vec<_>>>()?;
                        if k == "$and" {
                            Filter::And(fs)
                        } else {
                            Filter::Or(fs)
                        }
                    }
                    "$not" => Filter::Not(Box::new(parse_at(v, depth + 1)?)),
                    op if op.starts_with('$') => {
                        return Err(bad(format!("unknown top-level operator {op}")))
                    }
                    path => {
                        check_field_path(path, "filter")?;
                        Filter::Path(path.to_string(), parse_conds(v, depth + 1)?)
                    }
                });
            }
            Ok(if all.len() == 1 {
                all.remove(0)
            } else {
                Filter::And(all)
            })
        }
        _ => Err(bad("a filter is a JSON object")),
    }
}

fn is_operator_object(v: &Value) -> bool {
    matches!(v, Value::Object(o) if !o.is_empty() && o.keys().all(|k| k.starts_with('$')))
}

fn parse_conds(v: &Value, depth: usize) -> Result<Vec<Cond>> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("nested more than {MAX_DEPTH} levels deep")));
    }
    if let Value::Object(o) = v {
        // An object mixing operators and field names is refused, as
        // MongoDB does: silently treating it as a literal equality would
        // match nothing.
        let ops = o.keys().filter(|k| k.starts_with('$')).count();
        if ops > 0 && ops < o.len() {
            let op = o
                .keys()
                .find(|k| k.starts_with('$'))
                .cloned()
                .unwrap_or_default();
            return Err(bad(format!(
                "unknown operator: {op} is mixed with field names in one object"
            )));
        }
    }
    if !is_operator_object(v) {
        return Ok(vec![Cond::Eq(v.clone())]);
    }
    let Value::Object(o) = v else {
        unreachable!("checked by is_operator_object")
    };
    let list = |k: &str, v: &Value| match v {
        Value::Array(a) if a.len() > MAX_IN_VALUES => Err(bad(format!(
            "{k} takes at most {MAX_IN_VALUES} values ({} given)",
            a.len()
        ))),
        Value::Array(a) => Ok(a.clone()),
        _ => Err(bad(format!("{k} takes an array"))),
    };
    o.iter()
        .map(|(k, v)| {
            Ok(match k.as_str() {
                "$eq" => Cond::Eq(v.clone()),
                "$ne" => Cond::Ne(v.clone()),
                "$gt" => Cond::Gt(v.clone()),
                "$gte" => Cond::Gte(v.clone()),
                "$lt" => Cond::Lt(v.clone()),
                "$lte" => Cond::Lte(v.clone()),
                "$in" => Cond::In(list(k, v)?),
                "$nin" => Cond::Nin(list(k, v)?),
                "$exists" => match v {
                    Value::Bool(b) => Cond::Exists(*b),
                    _ => return Err(bad("$exists takes true or false")),
                },
                "$not" => {
                    if !is_operator_object(v) {
                        return Err(bad("$not on a path takes an object of operators"));
                    }
                    Cond::Not(parse_conds(v, depth + 1)?)
                }
                other => return Err(bad(format!("unknown operator {other}"))),
            })
        })
        .collect()
}

/// Whether `doc` matches `f`.
pub fn matches(f: &Filter, doc: &Value) -> bool {
    match f {
        Filter::And(fs) => fs.iter().all(|f| matches(f, doc)),
        Filter::Or(fs) => fs.iter().any(|f| matches(f, doc)),
        Filter::Not(f) => !matches(f, doc),
        Filter::Path(path, conds) => {
            let cands = order::candidates(doc, path);
            conds.iter().all(|c| holds(c, &cands))
        }
    }
}

fn equal_any(cands: &[&Value], v: &Value) -> bool {
    if v.is_null() && cands.is_empty() {
        return true;
    }
    cands.iter().any(|c| order::compare(c, v).is_eq())
}

fn holds(c: &Cond, cands: &[&Value]) -> bool {
    let range = |v: &Value, ok: fn(std::cmp::Ordering) -> bool| {
        let cls = class(v);
        cands
            .iter()
            .any(|c| class(c) == cls && ok(order::compare(c, v)))
    };
    match c {
        Cond::Eq(v) => equal_any(cands, v),
        Cond::Ne(v) => !equal_any(cands, v),
        Cond::Gt(v) => range(v, |o| o.is_gt()),
        Cond::Gte(v) => range(v, |o| o.is_ge()),
        Cond::Lt(v) => range(v, |o| o.is_lt()),
        Cond::Lte(v) => range(v, |o| o.is_le()),
        Cond::In(vs) => vs.iter().any(|v| equal_any(cands, v)),
        Cond::Nin(vs) => !vs.iter().any(|v| equal_any(cands, v)),
        Cond::Exists(b) => cands.is_empty() != *b,
        Cond::Not(cs) => !cs.iter().all(|c| holds(c, cands)),
    }
}

/// Ranges of value encodings an index on some path must read to find every
/// document a condition list can match, or `None` if an index cannot
/// narrow it (a `$ne`, `$exists`, `$not`, or null, array or object
/// values, which the index stores differently from how they match).
pub type Ranges = Vec<(Bound<Vec<u8>>, Bound<Vec<u8>>)>;

/// Whether an index holds `v` as it matches (booleans, numbers, strings).
pub(crate) fn indexable(v: &Value) -> bool {
    matches!(v, Value::Bool(_) | Value::Number(_) | Value::String(_))
}

/// The value ranges an index on `path` answers for `conds` (see
/// [`Ranges`]); the narrowest condition wins: equality, then `$in`, then
/// the intersection of the range operators of one type class. On a
/// `multikey` index (a path that holds arrays) only the first range
/// operator is used: each condition may be met by a different element of
/// an array (`{"$gt": 1, "$lt": 5}` matches `[0, 10]`), so intersecting
/// them would miss documents.
pub fn index_ranges(conds: &[Cond], multikey: bool) -> Option<Ranges> {
    for c in conds {
        if let Cond::Eq(v) = c {
            if indexable(v) {
                let e = encode(Some(v));
                return Some(vec![(Bound::Included(e.clone()), Bound::Included(e))]);
            }
        }
    }
    for c in conds {
        if let Cond::In(vs) = c {
            if vs.iter().all(indexable) {
                let mut es: Vec<Vec<u8>> = vs.iter().map(|v| encode(Some(v))).collect();
                es.sort();
                es.dedup();
                return Some(
                    es.into_iter()
                        .map(|e| (Bound::Included(e.clone()), Bound::Included(e)))
                        .collect(),
                );
            }
        }
    }
    let mut lo: Option<(Bound<Vec<u8>>, u8)> = None;
    let mut hi: Option<(Bound<Vec<u8>>, u8)> = None;
    // A range operator matches only values of its own type class, so two
    // of them with different classes (`{"$lte": false, "$lt": 0}`) match
    // nothing on a scalar path. Keeping only the tighter bound of each
    // side would forget the other class's condition.
    let mut first_class: Option<u8> = None;
    for c in conds {
        let (v, lower, incl) = match c {
            Cond::Gt(v) => (v, true, false),
            Cond::Gte(v) => (v, true, true),
            Cond::Lt(v) => (v, false, false),
            Cond::Lte(v) => (v, false, true),
            _ => continue,
        };
        if !indexable(v) {
            return None;
        }
        if *first_class.get_or_insert(class(v)) != class(v) {
            return Some(Vec::new());
        }
        let e = encode(Some(v));
        let b = if incl {
            Bound::Included(e)
        } else {
            Bound::Excluded(e)
        };
        let slot = if lower { &mut lo } else { &mut hi };
        let tighter = match slot {
            None => true,
            Some((old, _)) => {
                let (o, n) = (bound_key(old), bound_key(&b));
                if lower {
                    n > o || (n == o && matches!(b, Bound::Excluded(_)))
                } else {
                    n < o || (n == o && matches!(b, Bound::Excluded(_)))
                }
            }
        };
        if tighter {
            *slot = Some((b, class(v)));
        }
        if multikey {
            break;
        }
    }
    let cls = match (&lo, &hi) {
        (None, None) => return None,
        (Some((_, a)), Some((_, b))) if a != b => return Some(Vec::new()),
        (Some((_, c)), _) | (_, Some((_, c))) => *c,
    };
    let lo = lo.map(|(b, _)| b).unwrap_or(Bound::Included(vec![cls]));
    let hi = hi
        .map(|(b, _)| b)
        .unwrap_or(Bound::Excluded(vec![class_end(cls)]));
    Some(vec![(lo, hi)])
}

fn bound_key(b: &Bound<Vec<u8>>) -> &[u8] {
    match b {
        Bound::Included(k) | Bound::Excluded(k) => k,
        Bound::Unbounded => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(f: Value, d: Value) -> bool {
        matches(&parse(&f).expect("parse"), &d)
    }

    #[test]
    fn operators_match_as_documented() {
        let d = json!({"age": 30, "name": "ann", "tags": ["a", "b"], "a": {"b": 2}, "n": null});
        assert!(m(json!({"age": 30.0}), d.clone()));
        assert!(m(json!({"age": {"$gte": 30, "$lt": 31}}), d.clone()));
        assert!(
            !m(json!({"age": {"$gt": "a"}}), d.clone()),
            "type bracketing"
        );
        assert!(m(json!({"tags": "b"}), d.clone()), "array element");
        assert!(m(json!({"tags": ["a", "b"]}), d.clone()), "whole array");
        assert!(m(json!({"a.b": {"$in": [1, 2]}}), d.clone()));
        assert!(m(json!({"a.c": null}), d.clone()), "null matches missing");
        assert!(m(json!({"n": {"$exists": true}}), d.clone()));
        assert!(m(json!({"zz": {"$exists": false}}), d.clone()));
        assert!(m(json!({"tags": {"$nin": ["c"]}}), d.clone()));
        assert!(!m(json!({"tags": {"$ne": "a"}}), d.clone()));
        assert!(m(json!({"$or": [{"age": 1}, {"name": "ann"}]}), d.clone()));
        assert!(m(json!({"$not": {"age": 1}}), d.clone()));
        assert!(m(json!({"age": {"$not": {"$gt": 40}}}), d.clone()));
        for bad in [
            json!([]),
            json!({"$foo": 1}),
            json!({"a": {"$in": 1}}),
            json!({"a": {"$bad": 1}}),
            json!({"$and": {}}),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn index_ranges_pick_the_narrowest() {
        let r = index_ranges(
            &[Cond::Gt(json!(1)), Cond::Gte(json!(5)), Cond::Lt(json!(9))],
            false,
        )
        .expect("ranges");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, Bound::Included(encode(Some(&json!(5)))));
        assert_eq!(r[0].1, Bound::Excluded(encode(Some(&json!(9)))));
        assert!(index_ranges(&[Cond::Ne(json!(1))], false).is_none());
        assert_eq!(
            index_ranges(&[Cond::Gt(json!(1)), Cond::Lt(json!("a"))], false),
            Some(Vec::new())
        );
    }

    /// Found by `find_agrees_with_a_naive_evaluator`: two upper (or two
    /// lower) bounds of different type classes kept only the tighter one,
    /// so an index scan returned `{"a": false}` for `{"$lte": false,
    /// "$lt": 0}`, which matches nothing.
    #[test]
    fn index_ranges_of_two_classes_on_one_side_are_empty() {
        for conds in [
            vec![Cond::Lte(json!(false)), Cond::Lt(json!(0))],
            vec![Cond::Lt(json!(0)), Cond::Lte(json!(false))],
            vec![Cond::Gte(json!("a")), Cond::Gt(json!(true))],
            vec![Cond::Gt(json!(1)), Cond::Lt(json!(5)), Cond::Lt(json!("z"))],
        ] {
            assert_eq!(index_ranges(&conds, false), Some(Vec::new()), "{conds:?}");
        }
        // On a multikey path only the first range operator narrows.
        let r = index_ranges(&[Cond::Lte(json!(false)), Cond::Lt(json!(0))], true);
        assert_eq!(r.map(|r| r.len()), Some(1));
    }
}
