//! body/* and event/unknown: what the receiver must accept (or answer sensibly) whatever the
//! body looks like: other bytes for the same JSON, other scripts, a big or long call, fields
//! and event types added later, a body that is not JSON.

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

use super::context::{Context, Finding, REDIRECT, WRONG_ROUTE, answer, redirected, wrong_route};
use super::long_call;
use super::{Severity, Spec, fixed};
use crate::call::{RenderError, render_event};
use crate::catalog::{EventSpec, OptionalField, Platform};
use crate::check::Case;
use crate::delivery::ErrorKind;
use crate::overrides::Override;
use crate::text::status_text;

/// The size of body/large's transcript.
const LARGE_BYTES: usize = 1024 * 1024;
const UNKNOWN_EVENT: &str = "hookcli_unknown_event";
const UNICODE_TEXT: &str = "User: Bonjour, ça va? Señor Müller, naïve café. Agent: 東京の天気は晴れです。 \
     你好，世界！ 안녕하세요. Great 👋🎉 ✅ 𝄞";

const CASES: [Spec; 8] = [
    Spec::new(
        "body/reformatted",
        Severity::Error,
        "the event with other whitespace, key order and \\u escapes, signed over its own bytes, is accepted",
        |c, _, r| Box::pin(body_reformatted(c, r)),
    ),
    Spec::new(
        "body/unicode",
        Severity::Error,
        "a transcript with accents, CJK and emoji is accepted",
        |c, _, r| Box::pin(body_unicode(c, r)),
    ),
    Spec::new(
        "body/large",
        Severity::Error,
        "an event with a 1 MB transcript gets a 2xx or 413, not a 5xx or a timeout",
        |c, _, r| Box::pin(body_large(c, r)),
    ),
    Spec::new(
        "body/long-call",
        Severity::Error,
        "a 60-minute call's end event, with its transcript and word-level transcript object (hundreds of KB), gets a 2xx: a 413 would lose the call",
        |c, _, r| Box::pin(body_long_call(c, r)),
    ),
    Spec::new(
        "body/extra-fields",
        Severity::Error,
        "known events with unknown added fields are accepted",
        |c, _, r| Box::pin(body_extra_fields(c, r)),
    ),
    Spec::new(
        "body/missing-optional",
        Severity::Error,
        "each field of the default events that the platform's documents say may be absent, removed and then null, one at a time, is accepted",
        |c, _, r| Box::pin(body_missing_optional(c, r)),
    ),
    Spec::new(
        "body/malformed-json",
        Severity::Warning,
        "a validly signed body that is not JSON gets a 4xx",
        |c, _, r| Box::pin(body_malformed_json(c, r)),
    ),
    Spec::new(
        "event/unknown",
        Severity::Error,
        "an unknown event type is not answered with a 5xx (a 4xx is a warning)",
        |c, _, r| Box::pin(event_unknown(c, r)),
    ),
];

pub(super) fn cases(_: &Platform) -> Vec<Case> {
    fixed(&CASES)
}

/// The pointer to the longest string in a body: the transcript, in practice.
fn longest_string(value: &Value, at: String) -> Option<(usize, String)> {
    match value {
        Value::String(s) => Some((s.len(), at)),
        Value::Object(map) => map
            .iter()
            .filter_map(|(k, v)| {
                longest_string(
                    v,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                )
            })
            .max_by_key(|(n, _)| *n),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| longest_string(v, format!("{at}/{i}")))
            .max_by_key(|(n, _)| *n),
        _ => None,
    }
}

/// Changes the body's longest text; adds a `text` field when it has none.
fn edit_text(value: &mut Value, edit: impl FnOnce(&mut String)) {
    let pointer = longest_string(value, String::new()).map(|(_, p)| p);
    if let Some(Value::String(text)) = pointer.and_then(|p| value.pointer_mut(&p)) {
        edit(text);
    } else if let Value::Object(map) = value {
        let mut text = String::new();
        edit(&mut text);
        map.insert("text".into(), json!(text));
    }
}

/// The same JSON written differently: indented, keys in reverse order, every non-ASCII
/// character and `/` as a `\u` or `\/` escape. Parses to the same value; different bytes.
pub fn reformat(value: &Value) -> Vec<u8> {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    out.into_bytes()
}

fn write_value(out: &mut String, value: &Value, depth: usize) {
    let indent = |out: &mut String, depth: usize| out.push_str(&"    ".repeat(depth));
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            for (i, (key, item)) in map.iter().rev().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                indent(out, depth + 1);
                write_string(out, key);
                out.push_str(" : ");
                write_value(out, item, depth + 1);
            }
            out.push('\n');
            indent(out, depth);
            out.push('}');
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                indent(out, depth + 1);
                write_value(out, item, depth + 1);
            }
            out.push('\n');
            indent(out, depth);
            out.push(']');
        }
        Value::String(text) => write_string(out, text),
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// Skips a case about JSON text for a platform whose bodies are not JSON (a form).
fn not_json(context: &Context) -> Option<Finding> {
    let platform = context.platform();
    (platform.format != crate::catalog::BodyFormat::Json)
        .then(|| Finding::skipped(format!("{} does not send JSON bodies", platform.id)))
}

async fn body_reformatted(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    if let Some(skip) = not_json(context) {
        return Ok(skip);
    }
    let mut value = context.render_sample(rng)?;
    // An `é` to escape, so the bytes differ the way a re-serializer's would.
    edit_text(&mut value, |t| t.push_str(" Café"));
    let mut finding = Finding::default();
    let delivery = context
        .delivery(
            &context.signed(reformat(&value)),
            &context.config.policy,
            &mut finding,
            "",
        )
        .await;
    // Only a refused signature points at re-serialization; a timeout or a 500 is another fault.
    let refused =
        matches!(delivery.last().status, Some(401 | 403)) && delivery.last().error.is_none();
    if !delivery.delivered() && refused {
        finding.reasons.push(
            "the bytes differ from a compact body but parse the same: does the receiver verify a \
             re-serialized body instead of the raw bytes?"
                .into(),
        );
    }
    Ok(finding)
}

async fn body_unicode(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let mut value = context.render_sample(rng)?;
    edit_text(&mut value, |t| {
        t.push('\n');
        t.push_str(UNICODE_TEXT);
    });
    let body = context.platform().encode(&value);
    let mut finding = Finding::default();
    context
        .deliver(
            &context.signed(body),
            &context.config.policy,
            &mut finding,
            "",
        )
        .await;
    Ok(finding)
}

async fn body_large(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let mut value = context.render_sample(rng)?;
    edit_text(&mut value, |t| {
        let line = "User: I'd like to go over every line of my last three invoices, one by one. ";
        *t = line.repeat(LARGE_BYTES / line.len() + 1);
    });
    let body = context.platform().encode(&value);
    // 413 is a fine answer to a body this big: the platform then knows not to retry.
    let mut policy = context.config.policy.clone();
    policy.success = policy.success.also(413);
    let mut finding = Finding::default();
    context
        .deliver(
            &context.signed(body),
            &policy,
            &mut finding,
            "a 1 MB event: ",
        )
        .await;
    Ok(finding)
}

async fn body_long_call(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let event = context.sample_event();
    let platform = context.platform();
    let Some((value, minutes)) = long_call::render(&context.config.catalog, platform, event, rng)?
    else {
        return Ok(Finding::skipped(
            "the catalog has no conversations to make a call of",
        ));
    };
    let body = context.platform().encode(&value);
    let kb = body.len() / 1024;
    let what = format!("a {minutes}-minute {} ({kb} KB): ", event.name);
    let mut finding = Finding::default();
    let delivery = context
        .delivery(
            &context.signed(body),
            &context.config.policy,
            &mut finding,
            &what,
        )
        .await;
    let last = delivery.last();
    if !delivery.delivered() && last.status == Some(413) && last.error.is_none() {
        finding.reasons.push(format!(
            "the platform would lose that call: raise the receiver's body limit well above \
             {kb} KB (Express's default is 100 KB: express.json({{ limit: '1mb' }}))"
        ));
    }
    Ok(finding)
}

async fn body_extra_fields(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let platform = context.platform();
    let mut finding = Finding::default();
    for event in default_events(platform) {
        let mut value = render_event(&context.config.catalog, platform, event, rng)?;
        add_unknown_fields(&mut value);
        let body = context.platform().encode(&value);
        let what = format!("{} with added fields: ", event.name);
        context
            .deliver(
                &context.signed(body),
                &context.config.policy,
                &mut finding,
                &what,
            )
            .await;
    }
    Ok(finding)
}

async fn body_missing_optional(
    context: &Context,
    rng: &mut StdRng,
) -> Result<Finding, RenderError> {
    let platform = context.platform();
    let fields: Vec<(&EventSpec, &OptionalField)> = default_events(platform)
        .into_iter()
        .filter(|e| e.answer.is_none())
        .flat_map(|e| e.optional.iter().map(move |f| (e, f)))
        .collect();
    if fields.is_empty() {
        return Ok(Finding::skipped(format!(
            "no field of {}'s default events is marked optional in its catalog",
            platform.id
        )));
    }
    let mut finding = Finding::default();
    for (event, field) in fields {
        let path = set_path(&field.at);
        for edit in [Override::unset(&path), format!("{path}:=null").parse()] {
            let edit = edit.expect("a catalog pointer makes a valid path");
            // Its own seed, so the reproducing `hookcli send` renders the same body.
            let seed: u64 = rng.r#gen();
            let mut value = render_event(
                &context.config.catalog,
                platform,
                event,
                &mut crate::call::rng_from(Some(seed)),
            )?;
            if edit.apply(&mut value, &platform.free_form).is_err() {
                continue; // The catalog test checks every pointer is in its template.
            }
            let how = if edit.is_unset() { "removed" } else { "null" };
            let assumed = if field.assumed { ", assumed" } else { "" };
            let what = format!(
                "{} with {path} {how} (optional: {}{assumed}): ",
                event.name, field.source
            );
            let repro = context.send_line(&event.name, seed, &[edit.as_flag()]);
            context
                .delivery_reproduced(
                    &context.signed(platform.encode(&value)),
                    context.config.policies.for_event(&event.name),
                    &mut finding,
                    &what,
                    Some(repro),
                )
                .await;
        }
    }
    Ok(finding)
}

/// A JSON pointer as a `--set` path: `/call/call_analysis/x` → `call.call_analysis.x`,
/// `/a/0` → `a[0]`.
fn set_path(pointer: &str) -> String {
    let mut path = String::new();
    for part in pointer.split('/').skip(1) {
        let key = part.replace("~1", "/").replace("~0", "~");
        if !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{key}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&key);
        }
    }
    path
}

/// The events a platform sends unless filtered; all of them when it marks none.
fn default_events(platform: &Platform) -> Vec<&EventSpec> {
    let defaults: Vec<&EventSpec> = platform.events.iter().filter(|e| e.default).collect();
    if defaults.is_empty() {
        platform.events.iter().collect()
    } else {
        defaults
    }
}

/// Fields a platform might add next year: at the top and in each nested object.
fn add_unknown_fields(value: &mut Value) {
    let Value::Object(map) = value else { return };
    for nested in map.values_mut() {
        if let Value::Object(inner) = nested {
            inner.insert("hookcli_new_flag".into(), json!(true));
        }
    }
    let mut added = Map::new();
    added.insert("added_in".into(), json!("v2"));
    added.insert("values".into(), json!([1, 2.5, null, "three"]));
    map.insert("hookcli_new_field".into(), Value::Object(added));
}

async fn body_malformed_json(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    if let Some(skip) = not_json(context) {
        return Ok(skip);
    }
    let text =
        serde_json::to_string(&context.render_sample(rng)?).expect("a JSON value serializes");
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut finding = Finding::default();
    let attempt = context
        .once(&context.signed(text[..cut].to_string()), &mut finding)
        .await;
    match (attempt.status, attempt.error) {
        (Some(_), Some(ErrorKind::Redirect)) => finding.fail(
            Severity::Warning,
            format!(
                "a body that is not JSON was answered {}: {REDIRECT}",
                redirected(&attempt)
            ),
        ),
        (Some(status), None) if wrong_route(status) => finding.fail(
            Severity::Warning,
            format!(
                "a body that is not JSON was answered {}, which says nothing of how it is \
                 handled: {WRONG_ROUTE}",
                status_text(status)
            ),
        ),
        (Some(status), None) if (400..500).contains(&status) => {}
        (Some(status), None) if status >= 500 => finding.fail(
            Severity::Warning,
            format!(
                "a body that is not JSON was answered {}: the platform would retry it; answer 400",
                status_text(status)
            ),
        ),
        (Some(status), None) => finding.fail(
            Severity::Warning,
            format!(
                "a body that is not JSON was answered {}: expected a 4xx such as 400",
                status_text(status)
            ),
        ),
        _ => finding.fail(
            Severity::Warning,
            format!(
                "a body that is not JSON got no answer ({}): answer 400",
                answer(&attempt)
            ),
        ),
    }
    Ok(finding)
}

async fn event_unknown(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let platform = context.platform();
    let Some(field) = platform.event_field.clone() else {
        return Ok(Finding::skipped(format!(
            "{} sends one kind of event, with no event type field",
            platform.id
        )));
    };
    let mut value = context.render_sample(rng)?;
    if let Some(slot) = value.pointer_mut(&field) {
        *slot = json!(UNKNOWN_EVENT);
    }
    let body = context.platform().encode(&value);
    let mut finding = Finding::default();
    let attempt = context.once(&context.signed(body), &mut finding).await;
    let what = format!("an unknown event type (`{UNKNOWN_EVENT}`)");
    match (attempt.status, attempt.error) {
        _ if attempt.accepted => {}
        (Some(_), Some(ErrorKind::Redirect)) => finding.fail(
            Severity::Error,
            format!("{what} was answered {}: {REDIRECT}", redirected(&attempt)),
        ),
        (Some(status), None) if status >= 500 => finding.fail(
            Severity::Error,
            format!(
                "{what} was answered {}: platforms add event types over time, and each new one \
                 would fail and be retried; acknowledge unknown events with a 2xx",
                status_text(status)
            ),
        ),
        (Some(status), None) => finding.fail(
            Severity::Warning,
            format!(
                "{what} was answered {}: the platform retries anything but its success rule; \
                 acknowledge unknown events with a 2xx",
                status_text(status)
            ),
        ),
        _ => finding.fail(
            Severity::Error,
            format!("{what} got no answer: {}", answer(&attempt)),
        ),
    }
    Ok(finding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reformat_parses_to_the_same_value_with_other_bytes() {
        let value = json!({"event": "call_ended", "call": {"transcript": "Café 👋\n/", "n": [1, 2.5], "e": {}}});
        let bytes = reformat(&value);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("Caf\\u00e9 \\ud83d\\udc4b\\n\\/"), "{text}");
        assert!(text.find("\"call\"").unwrap() < text.find("\"event\"").unwrap());
        assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), value);
        assert_ne!(bytes, serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn pointers_become_set_paths() {
        assert_eq!(set_path("/call/call_analysis/x"), "call.call_analysis.x");
        assert_eq!(set_path("/a/0/b"), "a[0].b");
    }

    #[test]
    fn edits_the_longest_text() {
        let mut value = json!({"a": "short", "b": {"c/d": "the longest text here"}});
        edit_text(&mut value, |t| t.push('!'));
        assert_eq!(value["b"]["c/d"], "the longest text here!");
    }
}
