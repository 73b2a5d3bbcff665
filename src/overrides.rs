//! `--set PATH=STRING` and `--set PATH:=JSON` (the httpie convention) on a rendered body, and
//! `--unset PATH`, which removes a field.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Key(k) => f.write_str(k),
            Segment::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// One parsed `--set` (a value) or `--unset` (no value: the field is removed).
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    path: Vec<Segment>,
    value: Option<Value>,
    source: String,
}

/// A `--set` that cannot be parsed or applied. The command layer adds the hint: it knows the
/// event and platform that `hookcli show` needs to print the body.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error("--set `{arg}`: expected PATH=STRING or PATH:=JSON")]
    NoEquals { arg: String },
    /// `--unset PATH=VALUE`: a value given where only a path goes.
    #[error("--unset `{arg}`: expected only a PATH, with no value")]
    UnsetValue { arg: String },
    #[error("--set `{arg}`: `{raw}` after := is not JSON ({reason})")]
    NotJson {
        arg: String,
        raw: String,
        reason: String,
    },
    #[error("{flag} `{arg}`: {why}")]
    BadPath {
        flag: &'static str,
        arg: String,
        why: &'static str,
    },
    /// `near` is a key of the same object spelled like the missing one, as a whole path.
    #[error("{flag} `{arg}`: the body has no `{at}`")]
    Missing {
        flag: &'static str,
        arg: String,
        at: String,
        near: Option<String>,
    },
    /// The path goes where the body's shape does not: past an array's end, a key into an
    /// array, a step into a string or number.
    #[error("{flag} `{arg}`: {why}")]
    Shape {
        flag: &'static str,
        arg: String,
        why: String,
    },
}

fn path_text(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        if matches!(segment, Segment::Key(_)) && !out.is_empty() {
            out.push('.');
        }
        out.push_str(&segment.to_string());
    }
    if out.is_empty() {
        "(top level)".into()
    } else {
        out
    }
}

impl FromStr for Override {
    type Err = OverrideError;

    fn from_str(arg: &str) -> Result<Self, OverrideError> {
        let eq = arg.find('=').ok_or_else(|| OverrideError::NoEquals {
            arg: arg.to_string(),
        })?;
        let (path, value) = if arg[..eq].ends_with(':') {
            let raw = &arg[eq + 1..];
            let value = serde_json::from_str(raw).map_err(|e| OverrideError::NotJson {
                arg: arg.to_string(),
                raw: raw.to_string(),
                reason: e.to_string(),
            })?;
            (&arg[..eq - 1], value)
        } else {
            (&arg[..eq], Value::String(arg[eq + 1..].to_string()))
        };
        Ok(Override {
            path: parse_path(path, arg, SET)?,
            value: Some(value),
            source: arg.to_string(),
        })
    }
}

const SET: &str = "--set";
const UNSET: &str = "--unset";

fn parse_path(path: &str, arg: &str, flag: &'static str) -> Result<Vec<Segment>, OverrideError> {
    let bad = |why: &'static str| OverrideError::BadPath {
        flag,
        arg: arg.to_string(),
        why,
    };
    if path.is_empty() {
        return Err(bad("the path is empty"));
    }
    let mut segments = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if key.is_empty() && rest.is_empty() {
            return Err(bad("a path segment is empty"));
        }
        if !key.is_empty() {
            segments.push(Segment::Key(key.to_string()));
        }
        while !rest.is_empty() {
            let close = rest.find(']').ok_or_else(|| bad("a `[` is not closed"))?;
            let index = rest[1..close]
                .parse()
                .map_err(|_| bad("an index is not a number"))?;
            segments.push(Segment::Index(index));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(bad("unexpected text after `]`"));
            }
        }
    }
    Ok(segments)
}

impl Override {
    /// An `--unset PATH`: the field at PATH is removed (an array item too, closing the gap).
    pub fn unset(arg: &str) -> Result<Override, OverrideError> {
        if arg.contains('=') {
            return Err(OverrideError::UnsetValue {
                arg: arg.to_string(),
            });
        }
        Ok(Override {
            path: parse_path(arg, arg, UNSET)?,
            value: None,
            source: arg.to_string(),
        })
    }

    /// Whether this removes a field rather than setting one.
    pub fn is_unset(&self) -> bool {
        self.value.is_none()
    }

    /// The flag as typed: `--set 'a.b:=1'` or `--unset a.b`, quoted for a shell.
    pub fn as_flag(&self) -> String {
        let flag = if self.is_unset() { UNSET } else { SET };
        format!("{flag} {}", crate::text::shell_quote(&self.source))
    }

    fn flag(&self) -> &'static str {
        if self.is_unset() { UNSET } else { SET }
    }

    /// Sets (or removes) the value in `body`. Every step of the path must exist, so that a typo is an error
    /// rather than a body sent without the change. The one exception is a new last key in an
    /// object reached through a key named in `free_form` (`metadata`, say): the platform's
    /// users fill those objects with keys of their own, which no template can know.
    pub fn apply(&self, body: &mut Value, free_form: &[String]) -> Result<(), OverrideError> {
        let Some((last, parents)) = self.path.split_last() else {
            return Err(OverrideError::BadPath {
                flag: self.flag(),
                arg: self.source.clone(),
                why: "the path is empty",
            });
        };
        let mut node = &mut *body;
        for (depth, segment) in parents.iter().enumerate() {
            match step(node, segment) {
                Some(next) => node = next,
                None => return Err(self.missing(body, depth)),
            }
        }
        match (last, node, &self.value) {
            (Segment::Key(key), Value::Object(map), None) if map.contains_key(key) => {
                map.remove(key);
                Ok(())
            }
            (Segment::Key(key), Value::Object(map), Some(value))
                if map.contains_key(key) || self.is_inside_free_form(free_form) =>
            {
                map.insert(key.clone(), value.clone());
                Ok(())
            }
            (Segment::Index(i), Value::Array(items), None) if *i < items.len() => {
                items.remove(*i);
                Ok(())
            }
            (Segment::Index(i), Value::Array(items), Some(value)) if *i < items.len() => {
                items[*i] = value.clone();
                Ok(())
            }
            _ => Err(self.missing(body, parents.len())),
        }
    }

    /// Whether a key before the last one names a free-form object: everything below it,
    /// nested objects too, is the user's own.
    fn is_inside_free_form(&self, free_form: &[String]) -> bool {
        let parents = &self.path[..self.path.len().saturating_sub(1)];
        parents
            .iter()
            .any(|segment| matches!(segment, Segment::Key(k) if free_form.contains(k)))
    }

    /// The error for the step at `depth`, which `body` does not have, with the key of that
    /// object spelled most like it.
    fn missing(&self, body: &Value, depth: usize) -> OverrideError {
        let parent = walk(body, &self.path[..depth]);
        if let Some(why) = parent.and_then(|p| self.shape_mismatch(p, depth)) {
            return OverrideError::Shape {
                flag: self.flag(),
                arg: self.source.clone(),
                why,
            };
        }
        let near = match (&self.path[depth], parent) {
            (Segment::Key(typed), Some(Value::Object(map))) => {
                closest_key(typed, map.keys().map(String::as_str)).map(|key| {
                    let mut path = self.path[..depth].to_vec();
                    path.push(Segment::Key(key.to_string()));
                    path_text(&path)
                })
            }
            _ => None,
        };
        OverrideError::Missing {
            flag: self.flag(),
            arg: self.source.clone(),
            at: path_text(&self.path[..=depth]),
            near,
        }
    }
}

impl Override {
    /// Why the step at `depth` cannot go into `parent`, when it is the shape and not a
    /// missing key: "`payload.transcript` has 4 items, [0] to [3]".
    fn shape_mismatch(&self, parent: &Value, depth: usize) -> Option<String> {
        let at = path_text(&self.path[..depth]);
        let kind = |v: &Value| match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        match (&self.path[depth], parent) {
            (Segment::Index(_), Value::Array(items)) if items.is_empty() => {
                Some(format!("`{at}` is an empty array"))
            }
            (Segment::Index(_), Value::Array(items)) => Some(format!(
                "`{at}` has {} item{}, [0] to [{}]",
                items.len(),
                if items.len() == 1 { "" } else { "s" },
                items.len() - 1
            )),
            (Segment::Key(key), Value::Array(_)) => {
                Some(format!("`{at}` is an array: index it, like {at}[0].{key}"))
            }
            (Segment::Index(_), Value::Object(_)) => {
                Some(format!("`{at}` is an object, not an array: name a key"))
            }
            (_, Value::Object(_)) => None,
            (_, scalar) => Some(format!(
                "`{at}` is {}, with nothing inside to set",
                kind(scalar)
            )),
        }
    }
}

fn step<'a>(node: &'a mut Value, segment: &Segment) -> Option<&'a mut Value> {
    match (segment, node) {
        (Segment::Key(k), Value::Object(map)) => map.get_mut(k),
        (Segment::Index(i), Value::Array(items)) => items.get_mut(*i),
        _ => None,
    }
}

/// The value at `path`, read only.
fn walk<'a>(mut node: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    for segment in path {
        node = match (segment, node) {
            (Segment::Key(k), Value::Object(map)) => map.get(k)?,
            (Segment::Index(i), Value::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

/// The key nearest to a misspelled one, when it is plausibly a typo. Keys often repeat their
/// object's name (`call.call_status`), so each key is also matched without its leading
/// words: `call.status` finds `call_status`. The budget is one edit per four characters (at
/// least one), tighter than for event names: keys are short, and `nope` is not `type`.
fn closest_key<'a>(typed: &str, keys: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let budget = (typed.chars().count() / 4).max(1);
    keys.flat_map(|key| spellings(key).map(move |spelling| (spelling, key)))
        .map(|(spelling, key)| (strsim::damerau_levenshtein(typed, spelling), key))
        .filter(|(distance, _)| *distance <= budget)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, key)| key)
}

/// `call_status`, then `status`: the key and each tail after an underscore.
fn spellings(key: &str) -> impl Iterator<Item = &str> {
    let tails = key.match_indices('_').map(move |(i, _)| &key[i + 1..]);
    std::iter::once(key).chain(tails.filter(|tail| !tail.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set_in(body: &mut Value, arg: &str, free_form: &[&str]) -> Result<(), OverrideError> {
        let free_form: Vec<String> = free_form.iter().map(|k| k.to_string()).collect();
        arg.parse::<Override>()
            .and_then(|set| set.apply(body, &free_form))
    }

    fn set(body: &mut Value, arg: &str) -> Result<(), String> {
        set_in(body, arg, &[]).map_err(|e| e.to_string())
    }

    /// The missing path and the suggestion of a `Missing` error.
    fn missing(body: &mut Value, arg: &str, free_form: &[&str]) -> (String, Option<String>) {
        match set_in(body, arg, free_form) {
            Err(OverrideError::Missing { at, near, .. }) => (at, near),
            other => panic!("{arg}: expected a missing path, got {other:?}"),
        }
    }

    #[test]
    fn strings_json_and_indexes() {
        let mut body = json!({"call": {"vars": {"name": "x"}, "start": 1}, "payload": {"transcript": [{"message": "a"}]}});
        set(&mut body, "call.vars.name=Ana").unwrap();
        set(&mut body, "call.start:=1714608475945").unwrap();
        set(&mut body, "payload.transcript[0].message=hi").unwrap();
        set(&mut body, "call.vars.name=a=b").unwrap();
        assert_eq!(
            body,
            json!({"call": {"vars": {"name": "a=b"}, "start": 1714608475945u64}, "payload": {"transcript": [{"message": "hi"}]}})
        );
    }

    #[test]
    fn unset_removes_keys_and_items_and_null_is_a_value() {
        let mut body = json!({"call": {"a": 1, "b": 2, "list": [1, 2, 3]}});
        for unset in ["call.a", "call.list[0]"] {
            Override::unset(unset)
                .unwrap()
                .apply(&mut body, &[])
                .unwrap();
        }
        set(&mut body, "call.b:=null").unwrap();
        assert_eq!(body, json!({"call": {"b": null, "list": [2, 3]}}));
        let missing = Override::unset("call.a").unwrap().apply(&mut body, &[]);
        assert_eq!(
            missing.unwrap_err().to_string(),
            "--unset `call.a`: the body has no `call.a`"
        );
        assert!(Override::unset("call.a=1").is_err());
        // Inside a free-form object a missing key is still missing: nothing to remove.
        let free = ["metadata".to_string()];
        let mut body = json!({"metadata": {}});
        assert!(
            Override::unset("metadata.x")
                .unwrap()
                .apply(&mut body, &free)
                .is_err()
        );
        assert_eq!(
            Override::unset("call.list[0]").unwrap().as_flag(),
            "--unset 'call.list[0]'"
        );
    }

    #[test]
    fn missing_paths_and_bad_json_are_errors() {
        let mut body = json!({"call": {"list": [1]}});
        assert!(set(&mut body, "cal.x=1").unwrap_err().contains("no `cal`"));
        assert_eq!(
            set(&mut body, "call.list[3]=1").unwrap_err(),
            "--set `call.list[3]=1`: `call.list` has 1 item, [0] to [0]"
        );
        assert!(
            set(&mut body, "call.x:={oops")
                .unwrap_err()
                .contains("not JSON")
        );
        assert!("noequals".parse::<Override>().is_err());
        assert!("=x".parse::<Override>().is_err());
        assert!("a[x]=1".parse::<Override>().is_err());
    }

    #[test]
    fn a_path_against_the_shape_says_what_is_there() {
        let mut body = json!({"call": {"status": "ended", "list": [], "turns": [{"a": 1}]}});
        let before = body.clone();
        for (arg, why) in [
            ("call.list[0]=x", "`call.list` is an empty array"),
            (
                "call.turns.a=x",
                "`call.turns` is an array: index it, like call.turns[0].a",
            ),
            ("call[0]=x", "`call` is an object, not an array: name a key"),
            (
                "call.status.x=1",
                "`call.status` is a string, with nothing inside to set",
            ),
        ] {
            assert_eq!(
                set(&mut body, arg).unwrap_err(),
                format!("--set `{arg}`: {why}")
            );
        }
        assert_eq!(body, before);
    }

    #[test]
    fn a_missing_last_key_is_refused_and_the_body_is_unchanged() {
        let mut body = json!({"call": {"call_status": "ended", "metadata": {}}});
        let before = body.clone();
        let error = set(&mut body, "call.statu=ended").unwrap_err();
        assert_eq!(
            error,
            "--set `call.statu=ended`: the body has no `call.statu`"
        );
        assert_eq!(body, before);
    }

    #[test]
    fn a_missing_key_suggests_the_key_spelled_like_it() {
        let body = json!({"call": {"call_status": "ended", "metadata": {}}, "event": "x"});
        let near = |arg: &str| missing(&mut body.clone(), arg, &[]).1;
        // A key without the object's name in front of it.
        assert_eq!(near("call.statu=x"), Some("call.call_status".into()));
        assert_eq!(near("call.status=x"), Some("call.call_status".into()));
        // A typo in the whole key, at the last step or before it.
        assert_eq!(near("call.call_staus=x"), Some("call.call_status".into()));
        assert_eq!(near("cal.call_status=x"), Some("call".into()));
        assert_eq!(near("call.metdata.tier=x"), Some("call.metadata".into()));
        // Nothing close: no suggestion rather than a wild one.
        assert_eq!(near("nope.x=1"), None);
        assert_eq!(near("call.x=1"), None);
    }

    #[test]
    fn a_new_key_is_added_only_inside_a_free_form_object() {
        let free_form = ["metadata", "dynamic_variables"];
        let mut body = json!({"call": {"metadata": {}, "dynamic_variables": {"name": "x"}}});
        set_in(&mut body, "call.metadata.order_id=A1", &free_form).unwrap();
        set_in(&mut body, "call.dynamic_variables.tier=gold", &free_form).unwrap();
        // Deeper objects inside a free-form one are the user's too.
        set_in(&mut body, "call.metadata.order:={}", &free_form).unwrap();
        set_in(&mut body, "call.metadata.order.lines:=2", &free_form).unwrap();
        assert_eq!(
            body,
            json!({"call": {
                "metadata": {"order_id": "A1", "order": {"lines": 2}},
                "dynamic_variables": {"name": "x", "tier": "gold"}
            }})
        );
        // Beside a free-form object, and for a missing step within one, the path must exist.
        assert_eq!(
            missing(&mut body, "call.tier=gold", &free_form).0,
            "call.tier"
        );
        assert_eq!(
            missing(&mut body, "call.metadata.cart.id=1", &free_form).0,
            "call.metadata.cart"
        );
        // A free-form name that is the last key itself adds nothing new beside it.
        assert_eq!(missing(&mut body, "metadata=x", &free_form).0, "metadata");
    }
}
