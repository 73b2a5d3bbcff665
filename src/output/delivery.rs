//! One delivery, as human lines and as the documented JSON object.

use std::fmt::Write;
use std::time::Duration;

use super::json::{AttemptJson, DeliveryJson};
use super::{bad, dim, good, warn};
use crate::delivery::{Attempt, Delivery, ErrorKind, Outcome, RESPONSE_BODY_LIMIT};
use crate::policy::SuccessRule;
use crate::text::human_bytes;
use crate::text::status_text;

/// What was delivered where, and how it went.
pub struct DeliveryReport<'a> {
    pub platform: &'a str,
    pub event: &'a str,
    pub url: &'a str,
    pub call_id: Option<String>,
    pub rule: &'a SuccessRule,
    /// Whose rule it is: the platform id, or `--expect` when the user gave one.
    pub rule_owner: String,
    pub timeout: Duration,
    pub delivery: &'a Delivery,
}

/// A success that took more than this share of the deadline is worth a warning.
const SLOW_SHARE: f64 = 0.5;

impl DeliveryReport<'_> {
    /// "used 8.7s of the 10s timeout" when the success was slow.
    pub fn slow_note(&self) -> Option<String> {
        let latency = self.delivery.last().latency;
        (self.delivery.delivered()
            && latency.as_secs_f64() > self.timeout.as_secs_f64() * SLOW_SHARE)
            .then(|| {
                format!(
                    "used {} of the {} timeout",
                    crate::duration::short(latency),
                    crate::duration::short(self.timeout)
                )
            })
    }

    /// The verdict line: `delivered: 204 No Content (2xx)`, `failed after 4 attempts: ...`.
    pub fn verdict(&self) -> String {
        let delivery = self.delivery;
        let last = delivery.last();
        let tries = delivery.attempts.len();
        let after = if tries > 1 {
            format!(" after {tries} attempts")
        } else {
            String::new()
        };
        match delivery.outcome {
            Outcome::Delivered => {
                let on = if tries > 1 {
                    format!(" on attempt {tries}")
                } else {
                    String::new()
                };
                format!(
                    "delivered: {} ({}){on}",
                    status_text(last.status.unwrap_or(0)),
                    self.rule
                )
            }
            Outcome::Unreachable => {
                format!(
                    "unreachable{after}: {}",
                    last.detail.as_deref().unwrap_or("could not connect")
                )
            }
            Outcome::Failed => format!("failed{after}: {}", self.why(last)),
        }
    }

    /// Why one attempt did not meet the rule.
    pub fn why(&self, attempt: &Attempt) -> String {
        let requirement = format!("{} requires {}", self.rule_owner, self.rule.requirement());
        match (attempt.status, attempt.error) {
            (Some(status), Some(ErrorKind::Redirect)) => {
                let followed = match attempt.location.as_deref() {
                    Some(location) => format!("not followed, Location: {location}"),
                    None => "not followed, no Location header".into(),
                };
                format!("{} ({followed}), {requirement}", status_text(status))
            }
            (Some(status), None) => format!("{}, {requirement}", status_text(status)),
            (_, Some(_)) => attempt.detail.clone().unwrap_or_else(|| "failed".into()),
            (None, None) => "no response".into(),
        }
    }

    /// The verdict line, and the slow-success warning when there is one; each ends in `\n`.
    /// `send` prints [`header_line`], then one [`attempt_line`] per attempt as it ends, then
    /// this.
    pub fn ending(&self) -> String {
        let mut out = String::new();
        let verdict = self.verdict();
        let verdict = match self.delivery.outcome {
            Outcome::Delivered => good(&verdict),
            _ => bad(&verdict),
        };
        let _ = writeln!(out, "{verdict}");
        if let Some(note) = self.slow_note() {
            let _ = writeln!(out, "{}", warn(&format!("warning: {note}")));
        }
        out
    }

    /// The documented JSON object (README "JSON output"); replay adds its call and seq.
    pub fn json(&self) -> DeliveryJson<'_> {
        let delivery = self.delivery;
        DeliveryJson {
            kind: "delivery",
            platform: self.platform,
            event: self.event,
            url: self.url,
            call_id: self.call_id.as_deref(),
            expect: self.rule.to_string(),
            delivered: delivery.delivered(),
            outcome: outcome_word(delivery.outcome),
            status: delivery.last().status,
            attempts: delivery.attempts.iter().map(AttemptJson::of).collect(),
            // What the text output says after the verdict as `warning:` lines.
            warnings: self.slow_note().into_iter().collect(),
            receiver: None,
            call: None,
            seq: None,
            response: None,
            reproduce: None,
            response_body: None,
        }
    }
}

/// The first line: `POST URL · platform event · call ID`, without its `\n`.
pub fn header_line(url: &str, platform: &str, event: &str, call_id: Option<&str>) -> String {
    let call = call_id.map(|c| format!(" · call {c}")).unwrap_or_default();
    format!(
        "{} {url} {}{call}",
        dim("POST"),
        dim(&format!("· {platform} {event}"))
    )
}

/// An attempt's line, indented: `  #1  500 Internal Server Error  3.1 ms  retrying in 1s`.
pub fn attempt_line(attempt: &Attempt) -> String {
    let result = match (attempt.status, attempt.error) {
        (Some(status), Some(ErrorKind::Redirect)) => format!(
            "{} → {}",
            status_text(status),
            attempt.location.as_deref().unwrap_or("(no Location)")
        ),
        (Some(status), _) => status_text(status),
        (None, Some(kind)) => format!(
            "{}: {}",
            kind.word(),
            attempt.detail.as_deref().unwrap_or("")
        ),
        (None, None) => "no response".into(),
    };
    let result = if attempt.accepted {
        good(&result)
    } else {
        bad(&result)
    };
    let wait = match attempt.wait {
        Some(w) if w.is_zero() => "  retrying now".to_string(),
        Some(w) => format!("  retrying in {}", crate::duration::short(w)),
        None => String::new(),
    };
    let reconnected = if attempt.reconnected {
        "  (sent again on a fresh connection)"
    } else {
        ""
    };
    format!(
        "  #{}  {result}  {}{}{}",
        attempt.n,
        dim(&crate::duration::latency(attempt.latency)),
        dim(reconnected),
        dim(&wait)
    )
}

pub fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Delivered => "delivered",
        Outcome::Failed => "failed",
        Outcome::Unreachable => "unreachable",
    }
}

/// One request as `--dry-run` prints it: `METHOD URL`, the headers (masked by the caller), a
/// blank line, the body, each line ended.
pub fn dry_run_text(
    method: &str,
    url: &str,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> String {
    let mut out = format!("{method} {url}\n");
    for (name, value) in headers {
        let _ = writeln!(out, "{name}: {}", String::from_utf8_lossy(value.as_bytes()));
    }
    let _ = writeln!(out, "\n{}", String::from_utf8_lossy(body));
    out
}

/// `-v`, for stderr: one attempt the way curl shows it, printable as soon as it is over: the
/// request line, its headers, a blank, the body; then the status, the response headers, a
/// blank, the response body. It is headed `* attempt N` when the delivery has more than one:
/// a later one, or one that waits for a next.
pub fn attempt_exchange_text(url: &str, attempt: &Attempt, body: &[u8]) -> String {
    let numbered = attempt.n > 1 || attempt.wait.is_some();
    let mut out = String::new();
    if numbered {
        let _ = writeln!(out, "{}", dim(&format!("* attempt {}", attempt.n)));
    }
    if attempt.reconnected {
        let note = "* the kept-alive connection had been closed by the receiver (without \
                    `Connection: close`) and gave no answer: sent again on a fresh connection";
        let _ = writeln!(out, "{}", warn(note));
    }
    out.push_str(&request_text(url, attempt, body));
    out.push('\n');
    out.push_str(&response_text(attempt));
    out.push('\n');
    out
}

fn request_text(url: &str, attempt: &Attempt, body: &[u8]) -> String {
    let mut out = format!("{} POST {url}\n", dim(">"));
    for (name, value) in &attempt.request_headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        let _ = writeln!(out, "{} {name}: {value}", dim(">"));
    }
    let _ = writeln!(out, "{}", dim(">"));
    if attempt.n > 1 {
        let size = human_bytes(body.len() as u64);
        let same = format!("(the same {size} body as attempt 1)");
        let _ = writeln!(out, "{} {}", dim(">"), dim(&same));
        return out;
    }
    for line in pretty_body(body).lines() {
        let _ = writeln!(out, "{} {line}", dim(">"));
    }
    out
}

/// The body that went out, pretty when it is JSON (the wire bytes stay as they were).
fn pretty_body(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

fn response_text(attempt: &Attempt) -> String {
    let Some(status) = attempt.status else {
        let detail = attempt.detail.as_deref().unwrap_or("no response");
        return format!("{}\n", dim(&format!("* no response: {detail}")));
    };
    let mut out = format!("{} {}\n", dim("<"), status_text(status));
    for (name, value) in &attempt.response_headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        let _ = writeln!(
            out,
            "{} {name}: {}",
            dim("<"),
            super::escape_controls(&value)
        );
    }
    if attempt.response_body.is_empty() {
        return out;
    }
    let _ = writeln!(out, "{}", dim("<"));
    // The receiver's bytes, not ours: escaped so they cannot drive the terminal.
    for line in String::from_utf8_lossy(&attempt.response_body).lines() {
        let _ = writeln!(out, "{} {}", dim("<"), super::escape_controls(line));
    }
    if attempt.response_body.len() >= RESPONSE_BODY_LIMIT {
        let cut = "(only the first 64 KiB of the body was read; the rest was discarded)";
        let _ = writeln!(out, "{} {}", dim("<"), dim(cut));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use reqwest::header::HeaderMap;

    #[test]
    fn a_reconnected_attempt_says_so_in_v_and_in_its_line() {
        let attempt = Attempt {
            n: 1,
            status: Some(204),
            latency: Duration::from_millis(3),
            error: None,
            detail: None,
            location: None,
            wait: None,
            request_headers: HeaderMap::new(),
            response_headers: HeaderMap::new(),
            response_body: Bytes::new(),
            accepted: true,
            reconnected: true,
        };
        let text = attempt_exchange_text("http://127.0.0.1:1/webhook", &attempt, b"{}");
        assert!(text.contains("sent again on a fresh connection"), "{text}");
        assert!(attempt_line(&attempt).contains("sent again on a fresh connection"));
        assert!(super::AttemptJson::of(&attempt).reconnected);
    }
}
