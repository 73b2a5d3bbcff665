//! Judging the answer a platform reads from a receiver (an inbound call's routing, a custom
//! function's result), by the event's [`AnswerSpec`]: JSON or text, the schema, the size cap.
//! Platform-neutral: everything platform-specific is data in `payloads/<id>/`. Nothing here
//! prints.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::catalog::{AnswerSpec, Platform};

/// One thing wrong with an answer: where (a JSON pointer into the answer, empty for the whole
/// body) and why, in plain words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub pointer: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pointer.as_str() {
            "" => write!(f, "{}", self.message),
            pointer => write!(f, "{pointer}: {}", self.message),
        }
    }
}

/// What the answer is and whether the platform can use it.
#[derive(Clone, Debug)]
pub struct Judgement {
    pub problems: Vec<Problem>,
    /// The answer as JSON, when it is JSON.
    pub json: Option<Value>,
    /// Its length in characters (Unicode scalar values), as the cap counts.
    pub chars: usize,
    /// For a valid answer, what the platform does with it ("routes to agent a_1 (version 2)
    /// with 3 dynamic variables").
    pub effect: String,
    /// For an answer over the cap, the end of what the LLM would see.
    pub cut_at: Option<String>,
}

impl Judgement {
    pub fn valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Judges `body`, the answer to an event with `spec`.
pub fn judge(spec: &AnswerSpec, body: &[u8]) -> Judgement {
    let text = String::from_utf8_lossy(body);
    let chars = text.chars().count();
    let mut judgement = Judgement {
        problems: Vec::new(),
        json: None,
        chars,
        effect: String::new(),
        cut_at: None,
    };
    let problem = |pointer: &str, message: String| Problem {
        pointer: pointer.to_string(),
        message,
    };
    if let Some(max) = spec.max_chars.filter(|max| chars > *max) {
        let seen: String = text.chars().take(max).collect();
        let tail: String = {
            let tail: Vec<char> = seen.chars().rev().take(40).collect();
            tail.into_iter().rev().collect()
        };
        judgement.problems.push(problem(
            "",
            format!(
                "the answer is {} characters; the platform cuts it to {}, so the LLM sees it end \
                 with «{tail}» and misses the rest",
                thousands(chars),
                thousands(max)
            ),
        ));
        judgement.cut_at = Some(tail);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => {
            judgement
                .problems
                .extend(schema_problems(&spec.schema, &value));
            judgement.json = Some(value);
        }
        Err(_) if spec.text_ok && !text.trim().is_empty() => {}
        Err(e) => {
            let what = if text.trim().is_empty() {
                "the body is empty".to_string()
            } else {
                format!("the body is not JSON ({e})")
            };
            judgement.problems.push(problem(
                "",
                format!("{what}; the platform reads a JSON answer (`{{}}` asks for nothing)"),
            ));
        }
    }
    if judgement.valid() {
        judgement.effect = effect(spec, judgement.json.as_ref(), chars);
    }
    judgement
}

/// The schema's complaints, each at the answer's pointer, in the words the schema gives
/// (`description` of the failing node) after what the value is.
fn schema_problems(schema: &Value, value: &Value) -> Vec<Problem> {
    let validator = match jsonschema::validator_for(schema) {
        Ok(v) => v,
        Err(e) => {
            return vec![Problem {
                pointer: String::new(),
                message: format!("the catalog's answer schema does not compile: {e}"),
            }];
        }
    };
    validator
        .iter_errors(value)
        .map(|error| {
            let pointer = error.instance_path().to_string();
            let schema_path = error.schema_path().to_string();
            // The node holding the failing keyword: `/…/additionalProperties/type` → `/…/additionalProperties`.
            let node = schema_path
                .rsplit_once('/')
                .map(|(node, _)| node)
                .unwrap_or("");
            let said = schema
                .pointer(node)
                .and_then(|n| n.get("description"))
                .and_then(Value::as_str);
            let found = value.pointer(&pointer).unwrap_or(&Value::Null);
            let message = match (schema_path.ends_with("/type"), said) {
                (true, Some(said)) => format!("{} is {}; {said}", shown(found), kind(found)),
                (false, Some(said)) => format!("{error}; {said}"),
                (_, None) => error.to_string(),
            };
            Problem { pointer, message }
        })
        .collect()
}

/// A value for a message: short as JSON, cut past 40 characters.
fn shown(value: &Value) -> String {
    crate::text::shorten(&value.to_string(), 40)
}

/// "a number", "an object": the JSON type in words.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What the platform does with a valid answer: the spec's phrases for what the answer holds,
/// else its plain effect; for a capped answer, how much the LLM reads.
fn effect(spec: &AnswerSpec, json: Option<&Value>, chars: usize) -> String {
    let phrases: Vec<String> = spec
        .says
        .iter()
        .filter_map(|(pointer, text)| {
            let value = json?.pointer(pointer)?;
            Some(phrase(text, value))
        })
        .collect();
    // The first phrase says where the answer goes; without it, the plain effect does.
    let leads = spec
        .says
        .first()
        .is_some_and(|(pointer, _)| json.and_then(|j| j.pointer(pointer)).is_some());
    let mut effect = match (phrases.is_empty(), leads) {
        (true, _) => spec.effect.clone(),
        (false, true) => phrases.join(" "),
        (false, false) => format!("{} {}", spec.effect, phrases.join(" ")),
    };
    if spec.max_chars.is_some() {
        let what = if json.is_some() { "JSON" } else { "text" };
        effect = format!("{effect}: {} characters of {what}", thousands(chars));
    }
    effect
}

/// `{}` is the value (a string without its quotes), `{n}` its count of keys, items or
/// characters, `{s}` an `s` unless that count is one.
fn phrase(text: &str, value: &Value) -> String {
    let plain = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let count = match value {
        Value::Object(map) => map.len(),
        Value::Array(items) => items.len(),
        Value::String(s) => s.chars().count(),
        _ => 1,
    };
    text.replace("{n}", &count.to_string())
        .replace("{s}", if count == 1 { "" } else { "s" })
        .replace("{}", &plain)
}

/// The answer's values copied where the platform puts them in later events (`carry`): an
/// object merges into an object there, anything else replaces. Returns how many were carried.
pub fn carry(spec: &AnswerSpec, answer: &Value, event: &mut Value) -> usize {
    let mut carried = 0;
    for (from, to) in &spec.carry {
        let (Some(value), Some(target)) = (answer.pointer(from), event.pointer_mut(to)) else {
            continue;
        };
        match (target, value) {
            (Value::Object(target), Value::Object(value)) => {
                for (k, v) in value {
                    target.insert(k.clone(), v.clone());
                }
            }
            (target, value) => *target = value.clone(),
        }
        carried += 1;
    }
    carried
}

/// The bodies a receiver answers with, for the events the platform reads an answer of.
#[derive(Clone, Debug, Default)]
pub struct Answers {
    /// For every request that gets a 2xx (`listen --respond FILE`).
    pub every: Option<Bytes>,
    /// By event name (`listen --respond EVENT=FILE`).
    pub by_event: BTreeMap<String, Bytes>,
    /// The catalog's example answers, by event name: for an event nothing else answers.
    examples: BTreeMap<String, Bytes>,
    /// Names of function-call events: a body naming none of them may still be one.
    functions: Vec<(String, String)>,
}

impl Answers {
    /// The catalog's example answers, so that a bare receiver answers validly.
    pub fn examples(platform: &Platform) -> Answers {
        let mut answers = Answers::default();
        for event in &platform.events {
            if let Some(example) = event.answer.as_ref().and_then(|a| a.example.as_ref())
                && let Ok(bytes) = serde_json::to_vec(example)
            {
                answers
                    .examples
                    .insert(event.name.clone(), Bytes::from(bytes));
            }
        }
        answers.functions = platform
            .events
            .iter()
            .filter_map(|e| Some((e.name.clone(), last_key(&e.function.as_ref()?.args_at)?)))
            .collect();
        answers
    }

    pub fn is_empty(&self) -> bool {
        self.every.is_none() && self.by_event.is_empty() && self.examples.is_empty()
    }

    /// Whether the body may be one of the answered events: its bytes name one (a quick look
    /// before parsing, so a receiver under load parses only the bodies it answers).
    pub fn may_answer(&self, body: &[u8]) -> bool {
        // As JSON strings, quotes included: `"args"`, not the `args` of "arguments".
        let names = self.by_event.keys().chain(self.examples.keys());
        let keys = self.functions.iter().map(|(_, key)| key);
        self.every.is_some()
            || names
                .chain(keys)
                .any(|n| contains(body, format!("\"{n}\"").as_bytes()))
    }

    /// The answer for a request of this event: the one given for it, else the one given for
    /// every request, else the catalog's example (`None` for an event with none).
    pub fn for_event(&self, event: Option<&str>) -> Option<&Bytes> {
        event
            .and_then(|e| self.by_event.get(e))
            .or(self.every.as_ref())
            .or_else(|| event.and_then(|e| self.examples.get(e)))
    }
}

fn last_key(pointer: &str) -> Option<String> {
    pointer
        .rsplit('/')
        .next()
        .filter(|k| !k.is_empty())
        .map(str::to_string)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A short account of a request the platform waits on, for listen's line: a function's
/// name and args (`check_order_status {"order_id":"A-1"}`), or the event's `line` of values
/// (an inbound call's numbers).
pub fn summary(platform: &Platform, event: &str, body: &Value) -> Option<String> {
    let spec = platform.event(event)?;
    if let Some(function) = &spec.function {
        let name = body.pointer(&function.name_at).and_then(Value::as_str)?;
        let args = body.pointer(&function.args_at)?;
        return Some(format!("{name} {args}"));
    }
    let line = spec.line.as_deref()?;
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let pointer = &rest[start + 1..start + end];
        match body.pointer(pointer) {
            Some(Value::String(s)) => out.push_str(s),
            Some(other) => out.push_str(&other.to_string()),
            None => out.push('-'),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// A `hookcli send` line that makes this function call again, for reports.
pub fn send_line(url: &str, name: &str, args: &Value, method: &str, args_only: bool) -> String {
    let mut line = format!(
        "hookcli send function_call --to {} --function {} --args {}",
        crate::text::shell_quote(url),
        crate::text::shell_quote(name),
        crate::text::shell_quote(&args.to_string())
    );
    if !method.eq_ignore_ascii_case("POST") {
        line.push_str(&format!(" --method {}", method.to_ascii_uppercase()));
    }
    if args_only {
        line.push_str(" --args-only");
    }
    line
}

/// `$.order.items[0].eta` (a response variable's JSON path) as a JSON pointer.
pub fn json_path_pointer(path: &str) -> String {
    let path = path.trim_start_matches('$').trim_start_matches('.');
    let mut pointer = String::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        let key = rest.split('[').next().unwrap_or_default();
        if !key.is_empty() {
            pointer.push('/');
            pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
        }
        while let Some(start) = rest.find('[') {
            let end = rest[start..].find(']').map_or(rest.len(), |e| start + e);
            pointer.push('/');
            pointer.push_str(rest[start + 1..end].trim_matches(['"', '\'']));
            rest = &rest[(end + 1).min(rest.len())..];
        }
    }
    pointer
}

/// 15000 → "15,000".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inbound() -> AnswerSpec {
        let catalog = crate::catalog::Catalog::load(None).expect("catalog");
        let platform = catalog.platform("uponai").expect("uponai").clone();
        platform
            .event("call_inbound")
            .and_then(|e| e.answer.as_deref().cloned())
            .expect("answer")
    }

    #[test]
    fn a_number_for_a_dynamic_variable_is_named_in_plain_words() {
        let body = json!({"call_inbound": {"dynamic_variables": {"age": 42}}});
        let judged = judge(&inbound(), body.to_string().as_bytes());
        assert_eq!(
            judged.problems[0].to_string(),
            "/call_inbound/dynamic_variables/age: 42 is a number; dynamic variables are strings"
        );
    }

    #[test]
    fn a_valid_routing_says_where_the_call_goes() {
        let body = json!({"call_inbound": {"override_agent_id": "agent_123",
            "override_agent_version": 2,
            "dynamic_variables": {"a": "1", "b": "2", "c": "3"}}});
        let judged = judge(&inbound(), body.to_string().as_bytes());
        assert!(judged.valid(), "{:?}", judged.problems);
        assert_eq!(
            judged.effect,
            "routes to agent agent_123 (version 2) with 3 dynamic variables"
        );
    }

    #[test]
    fn the_cap_counts_characters_not_bytes() {
        let mut spec = inbound();
        spec.max_chars = Some(3);
        spec.text_ok = true;
        assert!(judge(&spec, "ééé".as_bytes()).valid());
        assert!(!judge(&spec, "éééé".as_bytes()).valid());
    }

    #[test]
    fn only_bodies_that_may_be_answered_are_parsed() {
        let catalog = crate::catalog::Catalog::load(None).expect("catalog");
        let answers = Answers::examples(catalog.platform("uponai").expect("uponai"));
        assert!(answers.may_answer(br#"{"event":"call_inbound"}"#));
        assert!(answers.may_answer(br#"{"name":"f","args":{}}"#));
        assert!(!answers.may_answer(br#"{"event":"call_ended","arguments":"{}"}"#));
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(15000), "15,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
