//! What a receiver saw, as one line, a pretty body, or a JSON object.

use serde_json::Value;

use super::{Tone, bad, escape_controls, escape_lines, good};
use crate::receiver::Received;
use crate::signing::Verdict;
use crate::text::{human_bytes, shorten};

/// `10:04:05.123  call_ended  Jabr9TXY…  valid  204  2.1 KB`. Whatever came from the wire
/// is escaped: an unverified body must not be able to forge a line.
pub fn line(received: &Received) -> String {
    let mut out = Vec::new();
    write_line(received, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// [`line`], appended to `out` with its pieces written in place rather than each made a
/// String first (listen writes one per request; the pieces were ten allocations).
pub fn write_line(received: &Received, out: &mut Vec<u8>) {
    use std::io::Write;
    let (dim, green, red, yellow) = (
        Tone::Dim.style(),
        Tone::Good.style(),
        Tone::Bad.style(),
        Tone::Warn.style(),
    );
    // As text::iso_millis writes it (`2026-11-30T10:04:05.123Z`), kept to the time of day.
    let mut stamp = std::io::Cursor::new([0u8; 48]);
    let _ = write!(stamp, "{}", humantime::format_rfc3339_millis(received.at));
    let len = stamp.position() as usize;
    let stamp = std::str::from_utf8(&stamp.get_ref()[..len]).unwrap_or_default();
    let time = stamp.get(11..23).unwrap_or(stamp);
    let event = escape_controls(received.event.as_deref().unwrap_or("-"));
    let call = escape_controls(received.call_id.as_deref().unwrap_or("-"));
    // A malformed header is quoted in its reason.
    let verdict_word = received.verdict.to_string();
    let verdict = match received.verdict {
        Verdict::Valid => &green,
        Verdict::Unsigned => &yellow,
        _ => &red,
    }
    .apply_to(escape_controls(&verdict_word));
    let _ = write!(out, "{}  {event}  {call}  {verdict}  ", dim.apply_to(time));
    // Relayed: both verdicts, listen's and the app's, `valid → app 500 in 12 ms`.
    let _ = match (&received.forwarded, received.answered) {
        (Some(forwarded), answered) => write!(out, "{}", relayed(forwarded, answered)),
        (None, Some(s)) if (200..300).contains(&s) => write!(out, "{}", green.apply_to(s)),
        (None, Some(s)) => write!(out, "{}", red.apply_to(s)),
        (None, None) => write!(out, "{}", red.apply_to("dropped")),
    };
    let _ = write!(out, "  {}", dim.apply_to(human_bytes(received.size())));
    // A function's args, an inbound call's numbers.
    if let Some(summary) = &received.summary {
        let short = shorten(summary, SUMMARY_CHARS);
        let _ = write!(out, "  {}", escape_controls(&short));
    }
    if let Some(first) = received.duplicate_of {
        let _ = write!(
            out,
            "{}",
            yellow.apply_to(format_args!("  duplicate of #{first}"))
        );
    }
    let note = received.note.as_deref();
    if received.method != "POST" || note.is_some_and(|n| n.starts_with("not the")) {
        let (method, path) = (&received.method, &received.path);
        let _ = write!(
            out,
            "  {} {}",
            escape_controls(method),
            escape_controls(path)
        );
    }
    if let Some(note) = note {
        let _ = write!(
            out,
            "{}",
            dim.apply_to(format_args!("  ({})", escape_controls(note)))
        );
    }
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
