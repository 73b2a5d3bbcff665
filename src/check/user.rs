//! The user's own cases, `[[cases]]` in hookcli.toml (as Hurl does): an event with edits, the
//! status expected, assertions on the answer by JSON pointer, a latency limit. Validated by
//! the command layer; judged here, without printing.

use std::time::Duration;

use serde_json::Value;

use crate::overrides::Override;

/// The prefix of every user case's name, so `--only cases/` picks them all.
pub const PREFIX: &str = "cases/";

/// One `[[cases]]` entry, checked against the catalog.
#[derive(Clone, Debug)]
pub struct UserCase {
    /// The name as reported: `cases/<name>`.
    pub name: String,
    pub event: String,
    /// `set` then `unset`, in the order they are applied.
    pub edits: Vec<Override>,
    /// The statuses expected; the platform's success rule when empty.
    pub status: Vec<u16>,
    /// The slowest answer allowed.
    pub latency: Option<Duration>,
    pub asserts: Vec<Assertion>,
}

/// One assertion on the answer's JSON.
#[derive(Clone, Debug)]
pub struct Assertion {
    /// A JSON pointer (RFC 6901): `/order/status`; empty for the whole answer.
    pub pointer: String,
    pub test: Test,
}

#[derive(Clone, Debug)]
pub enum Test {
    Equals(Value),
    Exists(bool),
    Matches(regex::Regex),
}

impl Assertion {
    /// Why the answer fails this assertion, naming the pointer, the expected and the actual
    /// value; `None` when it holds.
    pub fn failure(&self, answer: &Value) -> Option<String> {
        let found = answer.pointer(&self.pointer);
        let at = if self.pointer.is_empty() {
            "the answer".to_string()
        } else {
            format!("`{}`", self.pointer)
        };
        let actual = || found.map_or("nothing (no such field)".to_string(), shown);
        match &self.test {
            Test::Equals(expected) if found.is_some_and(|v| same(v, expected)) => None,
            Test::Equals(expected) => Some(format!(
                "{at}: expected {}, got {}",
                shown(expected),
                actual()
            )),
            Test::Exists(true) if found.is_some() => None,
            Test::Exists(false) if found.is_none() => None,
            Test::Exists(true) => Some(format!("{at}: expected to exist, got nothing")),
            Test::Exists(false) => Some(format!("{at}: expected to be absent, got {}", actual())),
            Test::Matches(pattern) => {
                let text = found.map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                match text {
                    Some(text) if pattern.is_match(&text) => None,
                    _ => Some(format!(
                        "{at}: expected to match /{}/, got {}",
                        pattern.as_str(),
                        actual()
                    )),
                }
            }
        }
    }
}

/// JSON equality where numbers compare by value: `1` in TOML equals `1.0` in the answer.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// A value as JSON, cut to 200 characters so a big answer does not flood the report.
fn shown(value: &Value) -> String {
    crate::text::shorten(&value.to_string(), 200)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(pointer: &str, test: Test, answer: Value) -> Option<String> {
        Assertion {
            pointer: pointer.into(),
            test,
        }
        .failure(&answer)
    }

    #[test]
    fn failures_name_the_pointer_the_expected_and_the_actual_value() {
        let answer = json!({"order": {"status": "pending", "n": 2}});
        assert_eq!(
            check(
                "/order/status",
                Test::Equals(json!("confirmed")),
                answer.clone()
            ),
            Some(r#"`/order/status`: expected "confirmed", got "pending""#.into())
        );
        assert_eq!(
            check("/order/n", Test::Equals(json!(2.0)), answer.clone()),
            None
        );
        assert_eq!(
            check("/order/id", Test::Exists(true), answer.clone()),
            Some("`/order/id`: expected to exist, got nothing".into())
        );
        assert_eq!(
            check("/order/id", Test::Exists(false), answer.clone()),
            None
        );
        let pattern = regex::Regex::new("^rec_").unwrap();
        assert_eq!(
            check("/order/n", Test::Matches(pattern.clone()), answer.clone()),
            Some("`/order/n`: expected to match /^rec_/, got 2".into())
        );
        assert_eq!(
            check("/order/x", Test::Equals(json!(1)), answer),
            Some("`/order/x`: expected 1, got nothing (no such field)".into())
        );
        assert_eq!(
            check("/id", Test::Matches(pattern), json!({"id": "rec_1"})),
            None
        );
    }
}
