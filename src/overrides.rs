//! `--set PATH=STRING` and `--set PATH:=JSON` (the httpie convention) on a rendered body.

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

/// One parsed `--set`.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    path: Vec<Segment>,
    value: Value,
    source: String,
}

/// A `--set` that cannot be parsed or applied. The command layer adds the hint: it knows the
/// event and platform that `hookcli show` needs to print the body.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error("--set `{arg}`: expected PATH=STRING or PATH:=JSON")]
    NoEquals { arg: String },
    #[error("--set `{arg}`: `{raw}` after := is not JSON ({reason})")]
    NotJson {
        arg: String,
        raw: String,
        reason: String,
    },
    #[error("--set `{arg}`: {why}")]
    BadPath { arg: String, why: &'static str },
    #[error("--set `{arg}`: the body has no `{at}`")]
    Missing { arg: String, at: String },
}

/// What applying an override did, for a note on stderr.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Replaced,
    /// The last key was not in the template and was added.
    Added(String),
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
            path: parse_path(path, arg)?,
            value,
            source: arg.to_string(),
        })
    }
}

fn parse_path(path: &str, arg: &str) -> Result<Vec<Segment>, OverrideError> {
    let bad = |why: &'static str| OverrideError::BadPath {
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
    /// Sets the value in `body`. Every step but the last must exist; a missing last key of an
    /// object is added (platforms add fields over time, and tests want to send them).
    pub fn apply(&self, body: &mut Value) -> Result<Applied, OverrideError> {
        let (last, parents) = self.path.split_last().expect("paths are never empty");
        let mut node = body;
        for (depth, segment) in parents.iter().enumerate() {
            node = step(node, segment).ok_or_else(|| self.missing(depth))?;
        }
        match (last, node) {
            (Segment::Key(key), Value::Object(map)) => {
                let added = map.insert(key.clone(), self.value.clone()).is_none();
                Ok(if added {
                    Applied::Added(path_text(&self.path))
                } else {
                    Applied::Replaced
                })
            }
            (Segment::Index(i), Value::Array(items)) if *i < items.len() => {
                items[*i] = self.value.clone();
                Ok(Applied::Replaced)
            }
            _ => Err(self.missing(parents.len())),
        }
    }

    fn missing(&self, depth: usize) -> OverrideError {
        OverrideError::Missing {
            arg: self.source.clone(),
            at: path_text(&self.path[..=depth]),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(body: &mut Value, arg: &str) -> Result<Applied, String> {
        arg.parse::<Override>()
            .and_then(|set| set.apply(body))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn strings_json_and_indexes() {
        let mut body = json!({"call": {"vars": {"name": "x"}, "start": 1}, "payload": {"transcript": [{"message": "a"}]}});
        assert_eq!(
            set(&mut body, "call.vars.name=Ana").unwrap(),
            Applied::Replaced
        );
        set(&mut body, "call.start:=1714608475945").unwrap();
        set(&mut body, "payload.transcript[0].message=hi").unwrap();
        assert_eq!(body["call"]["vars"]["name"], "Ana");
        assert_eq!(body["call"]["start"], 1714608475945u64);
        assert_eq!(body["payload"]["transcript"][0]["message"], "hi");
        assert_eq!(
            set(&mut body, "call.vars.tier=gold").unwrap(),
            Applied::Added("call.vars.tier".into())
        );
        set(&mut body, "call.vars.value=a=b").unwrap();
        assert_eq!(body["call"]["vars"]["value"], "a=b");
    }

    #[test]
    fn missing_paths_and_bad_json_are_errors() {
        let mut body = json!({"call": {"list": [1]}});
        assert!(set(&mut body, "cal.x=1").unwrap_err().contains("no `cal`"));
        assert!(
            set(&mut body, "call.list[3]=1")
                .unwrap_err()
                .contains("call.list[3]")
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
}
