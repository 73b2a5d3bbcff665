//! What a receiver saw, as one line, a pretty body, or a JSON object.

use serde_json::Value;

use super::{bad, dim, escape_controls, escape_lines, good, warn};
use crate::receiver::Received;
use crate::signing::Verdict;
use crate::text::human_bytes;

/// `10:04:05.123  call_ended  Jabr9TXY…  valid  204  2.1 KB`. Whatever came from the wire
/// is escaped: an unverified body must not be able to forge a line.
pub fn line(received: &Received) -> String {
    let time = crate::text::iso_millis(received.at);
    let time = time.get(11..23).unwrap_or(&time);
    let event = escape_controls(received.event.as_deref().unwrap_or("-"));
    let call = escape_controls(received.call_id.as_deref().unwrap_or("-"));
    let verdict = verdict_text(&received.verdict);
    let answered = match received.answered {
        Some(status) => status.to_string(),
        None => "dropped".into(),
    };
    let answered = match received.answered {
        Some(s) if (200..300).contains(&s) => good(&answered),
        _ => bad(&answered),
    };
    let route = if received.method != "POST"
        || received
            .note
            .as_deref()
            .is_some_and(|n| n.starts_with("not the"))
    {
        format!(
            "  {} {}",
            escape_controls(&received.method),
            escape_controls(&received.path)
        )
    } else {
        String::new()
    };
    let duplicate = received
        .duplicate_of
        .map(|first| warn(&format!("  duplicate of #{first}")))
        .unwrap_or_default();
    let note = received
        .note
        .as_deref()
        .map(|n| dim(&format!("  ({})", escape_controls(n))))
        .unwrap_or_default();
    // Relayed: both verdicts, listen's and the app's, `valid → app 500 in 12 ms`.
    let answered = match &received.forwarded {
        Some(forwarded) => relayed(forwarded, received.answered),
        None => answered,
    };
    // A function's args, an inbound call's numbers.
    let summary = received
        .summary
        .as_deref()
        .map(|s| format!("  {}", escape_controls(&shorten(s, SUMMARY_CHARS))))
        .unwrap_or_default();
    format!(
        "{}  {event}  {call}  {verdict}  {answered}  {}{summary}{duplicate}{route}{note}",
        dim(time),
        dim(&human_bytes(received.size()))
    )
}

/// `→ app 500 in 12 ms`, or `→ 502 app down (connection refused)`.
fn relayed(forwarded: &crate::receiver::Forwarded, answered: Option<u16>) -> String {
    let ms = forwarded.took.as_millis();
    match (forwarded.status, &forwarded.failure) {
        (Some(status), _) => {
            let text = format!("app {status}");
            let text = if (200..300).contains(&status) {
                good(&text)
            } else {
                bad(&text)
            };
            format!("→ {text} in {ms} ms")
        }
        (None, failure) => {
            let status = answered.map_or("dropped".to_string(), |s| s.to_string());
            let why = escape_controls(failure.as_deref().unwrap_or("app failed"));
            format!("→ {} {why}", bad(&status))
        }
    }
}

/// A line shows this much of a function's args; `-v` shows the whole body.
const SUMMARY_CHARS: usize = 120;

fn shorten(text: &str, most: usize) -> String {
    if text.chars().count() <= most {
        return text.to_string();
    }
    let kept: String = text.chars().take(most).collect();
    format!("{kept}…")
}

fn verdict_text(verdict: &Verdict) -> String {
    // A malformed header is quoted in its reason.
    let text = escape_controls(&verdict.to_string()).into_owned();
    match verdict {
        Verdict::Valid => good(&text),
        Verdict::Unsigned => warn(&text),
        _ => bad(&text),
    }
}

/// The body, pretty-printed when it is JSON, escaped for the terminal (JSON escapes only
/// the C0 controls, not DEL, C1 or the bidi marks).
pub fn pretty_body(received: &Received) -> String {
    let text = match serde_json::from_slice::<Value>(&received.body) {
        Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(&received.body).into_owned(),
    };
    escape_lines(&text)
}

/// One JSON object per request (README "listen --json").
pub fn json(received: &Received) -> super::json::ReceivedJson<'_> {
    super::json::ReceivedJson::of(received)
}
