//! Recorded traffic as data: the entries of a recording whatever its layout (`listen --record`
//! lines, bodies one per line, pretty-printed, concatenated or in a JSON array), and a
//! redacted copy of it that replays the same way (`hookcli record redact`), for committing
//! as test fixtures. Nothing here prints.

use rand::Rng;
use serde_json::Value;

use crate::catalog::Platform;
use crate::replay::RecordingError;

/// One thing read from a recording.
#[derive(Debug)]
pub enum Entry {
    /// A whole JSON value: a record line or a body. `line` is where it starts (1-based).
    Value { line: usize, value: Value },
    /// A value cut short: a record write that did not finish (a killed listener, a full disk).
    Torn { line: usize },
}

/// How a record line starts: `record_line` writes `time` first (serde_json keeps the order).
const RECORD_START: &str = "{\"time\":";

/// Every value of the text, in order; the elements of a top-level array each count as one.
/// A value cut off by the end of the text is torn, and so is a record line cut short with the
/// next session's record appended after it on the same line (what a listener killed midway
/// through a write leaves in a file the next `listen --record` appends to). Anything else
/// that is not JSON is an error naming the line and column.
pub fn entries(text: &str, file: &str) -> Result<Vec<Entry>, RecordingError> {
    let mut entries = Vec::new();
    let mut pos = 0;
    let mut in_array = false;
    let mut lines = Lines::default();
    loop {
        pos = skip_space(text, pos);
        let rest = &text[pos..];
        match rest.chars().next() {
            None => break,
            Some('[') if !in_array => {
                in_array = true;
                pos += 1;
                continue;
            }
            Some(']') if in_array => {
                in_array = false;
                pos += 1;
                continue;
            }
            Some(',') if in_array => {
                pos += 1;
                continue;
            }
            Some(_) => {}
        }
        let line = lines.at(text, pos);
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        match stream.next() {
            None => break,
            Some(Ok(value)) => {
                entries.push(Entry::Value { line, value });
                pos += stream.byte_offset();
            }
            Some(Err(e)) if e.is_eof() => {
                entries.push(Entry::Torn { line });
                break;
            }
            Some(Err(e)) => match glued_record(text, pos) {
                Some(next) => {
                    entries.push(Entry::Torn { line });
                    pos = next;
                }
                None => {
                    let at = error_offset(text, pos, &e);
                    let (line, column) = (line_at(text, at), at - line_start(text, at) + 1);
                    return Err(RecordingError {
                        file: file.to_string(),
                        line,
                        message: not_json(&e, column),
                    });
                }
            },
        }
    }
    Ok(entries)
}

/// The byte offset of a parse error of the value starting at `pos`. serde places an error at
/// a line break on column 0 of the next line: it is the end of the line before, where the
/// value broke off.
fn error_offset(text: &str, pos: usize, e: &serde_json::Error) -> usize {
    let mut at = pos;
    for _ in 1..e.line() {
        at += text[at..].find('\n').map_or(text.len() - at, |i| i + 1);
    }
    let mut at = match e.column() {
        0 => at.saturating_sub(1).max(pos),
        c => (at + c - 1).min(text.len()),
    };
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn skip_space(text: &str, pos: usize) -> usize {
    pos + (text.len() - pos - text[pos..].trim_start().len())
}

/// Line numbers of increasing positions, counted once: a recording of thousands of lines
/// is not rescanned from its start for each value.
#[derive(Default)]
struct Lines {
    pos: usize,
    /// Line breaks before `pos`.
    breaks: usize,
}

impl Lines {
    /// The 1-based line of `pos`, at or after every position asked before.
    fn at(&mut self, text: &str, pos: usize) -> usize {
        self.breaks += text[self.pos..pos].bytes().filter(|b| *b == b'\n').count();
        self.pos = pos;
        self.breaks + 1
    }
}

/// The 1-based line of a byte position (for the one error: a scan from the start is fine).
fn line_at(text: &str, pos: usize) -> usize {
    text[..pos].bytes().filter(|b| *b == b'\n').count() + 1
}

fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// Where the next record starts on a record line that did not parse: a torn line with the
/// next session's record appended to it.
fn glued_record(text: &str, pos: usize) -> Option<usize> {
    let rest = &text[pos..];
    if !rest.starts_with(RECORD_START) {
        return None;
    }
    let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
    line[1..].find(RECORD_START).map(|at| pos + 1 + at)
}

/// Why a value is not JSON, placed by column (serde's own "line 1" would contradict ours).
fn not_json(error: &serde_json::Error, column: usize) -> String {
    let text = error.to_string();
    let what = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(what, _)| what);
    format!("not JSON ({what} at column {column})")
}

/// Request headers a redacted record keeps as they were: they say how the request was sent,
/// not who sent it. Every other value (signatures, which no longer match the redacted body,
/// hosts, addresses, ids) becomes [`REDACTED`].
const KEPT_HEADERS: [&str; 7] = [
    "content-type",
    "content-length",
    "user-agent",
    "accept",
    "accept-encoding",
    "connection",
    "expect",
];

const REDACTED: &str = "(redacted)";

/// A redacted recording: one line per entry, in the order read.
#[derive(Debug)]
pub struct Redacted {
    pub text: String,
    /// Entries written.
    pub entries: usize,
    /// Lines left out because they were cut short.
    pub torn: Vec<usize>,
}

/// Redacts a recording: every body's people and text replaced as `replay --redact` does (one
/// [`crate::redact::Redactor`] for the whole file, so a call's events keep agreeing), header
/// values other than [`KEPT_HEADERS`] masked. Everything replay reads to decide what to send
/// and when (time, method, path, status, verdict, forwarded, rejected) is kept, so the copy
/// replays as the original did. A body the platform cannot read (one listen rejected as not
/// JSON) becomes a placeholder it cannot read either. Torn lines are left out.
pub fn redact(
    text: &str,
    file: &str,
    platform: &Platform,
    rng: &mut impl Rng,
) -> Result<Redacted, RecordingError> {
    let mut redactor = crate::redact::Redactor::default();
    let mut out = Redacted {
        text: String::new(),
        entries: 0,
        torn: Vec::new(),
    };
    for entry in entries(text, file)? {
        let mut value = match entry {
            Entry::Torn { line } => {
                out.torn.push(line);
                continue;
            }
            Entry::Value { value, .. } => value,
        };
        if value.get("headers").is_some() {
            redact_record(&mut value, platform, &mut redactor, rng);
        } else {
            redactor.redact(&mut value, rng);
        }
        out.text.push_str(&value.to_string());
        out.text.push('\n');
        out.entries += 1;
    }
    Ok(out)
}

/// A `listen --record` line with its body and headers redacted.
fn redact_record(
    record: &mut Value,
    platform: &Platform,
    redactor: &mut crate::redact::Redactor,
    rng: &mut impl Rng,
) {
    let body = match (record.get("body"), record.get("body_base64")) {
        (Some(Value::String(text)), _) => Some(text.as_bytes().to_vec()),
        (_, Some(Value::String(encoded))) => {
            use base64::Engine;
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .unwrap_or_default(),
            )
        }
        _ => None,
    };
    let mut length = None;
    if let (Some(bytes), Some(map)) = (body, record.as_object_mut()) {
        let text = match platform.decode(&bytes) {
            // Nothing in it to redact (a GET's body).
            _ if bytes.is_empty() => String::new(),
            Ok(mut value) => {
                redactor.redact(&mut value, rng);
                String::from_utf8_lossy(&platform.encode(&value)).into_owned()
            }
            // Starts like JSON and is not: neither a JSON nor a form platform reads it.
            Err(_) => format!(
                "{{(redacted: {} bytes the platform cannot read)",
                bytes.len()
            ),
        };
        length = Some(text.len());
        map.remove("body_base64");
        map.insert("body".into(), Value::String(text));
    }
    if let Some(Value::Array(headers)) = record.get_mut("headers") {
        for pair in headers.iter_mut() {
            let Some([Value::String(name), value]) = pair.as_array_mut().map(Vec::as_mut_slice)
            else {
                continue;
            };
            let name = name.to_ascii_lowercase();
            if name == "content-length"
                && let Some(length) = length
            {
                *value = Value::String(length.to_string());
            } else if !KEPT_HEADERS.contains(&name.as_str()) {
                *value = Value::String(REDACTED.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(usize, Option<Value>)> {
        entries(text, "f")
            .expect("readable")
            .into_iter()
            .map(|e| match e {
                Entry::Value { line, value } => (line, Some(value)),
                Entry::Torn { line } => (line, None),
            })
            .collect()
    }

    #[test]
    fn lines_pretty_values_concatenated_values_and_arrays_all_read() {
        let one = serde_json::json!({"a": 1});
        let two = serde_json::json!({"b": [1, 2]});
        for (text, lines) in [
            ("{\"a\":1}\n{\"b\":[1,2]}\n", [1, 2]),
            ("{\n  \"a\": 1\n}\n{\n  \"b\": [\n 1,\n 2]\n}\n", [1, 4]),
            ("{\"a\":1}{\"b\":[1,2]}", [1, 1]),
            ("[\n {\"a\":1},\n {\"b\":[1,2]}\n]\n", [2, 3]),
        ] {
            assert_eq!(
                values(text),
                [(lines[0], Some(one.clone())), (lines[1], Some(two.clone()))],
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_value_cut_off_at_the_end_is_torn() {
        assert_eq!(
            values("{\"a\":1}\n{\"time\":\"x\",\"bo"),
            [(1, Some(serde_json::json!({"a": 1}))), (2, None)]
        );
    }

    #[test]
    fn a_torn_record_with_the_next_record_appended_is_torn_and_the_next_is_read() {
        let text =
            "{\"time\":\"1\",\"body\":\"ab{\"time\":\"2\",\"body\":\"c\"}\n{\"time\":\"3\"}\n";
        assert_eq!(
            values(text),
            [
                (1, None),
                (1, Some(serde_json::json!({"time": "2", "body": "c"}))),
                (2, Some(serde_json::json!({"time": "3"}))),
            ]
        );
    }

    #[test]
    fn a_value_broken_off_at_a_line_end_is_placed_on_that_line() {
        let error = entries("{\"a\":\"to\n{\"a\":1}\n", "f").expect_err("not JSON");
        assert_eq!(
            (error.line, error.message.contains("at column 9)")),
            (1, true),
            "{}",
            error.message
        );
    }

    #[test]
    fn garbage_is_an_error_at_its_line_and_column() {
        let error = entries("{\"a\":1}\n  nope\n", "f").expect_err("not JSON");
        assert_eq!(error.line, 2);
        assert!(error.message.starts_with("not JSON ("), "{}", error.message);
        assert!(error.message.ends_with("at column 4)"), "{}", error.message);
    }
}
