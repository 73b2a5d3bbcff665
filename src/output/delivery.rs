//! One delivery, as human lines and as the documented JSON object.

use std::fmt::Write;
use std::time::Duration;

use serde_json::{Value, json};

use super::{bad, dim, good, status_text, warn};
use crate::delivery::{Attempt, Delivery, ErrorKind, Outcome, RESPONSE_BODY_LIMIT};
use crate::policy::SuccessRule;

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

    pub fn text(&self, verbose: bool) -> String {
        let mut out = String::new();
        let call = self
            .call_id
            .as_deref()
            .map(|c| format!(" · call {c}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {} {}{call}",
            dim("POST"),
            self.url,
            dim(&format!("· {} {}", self.platform, self.event))
        );
        for attempt in &self.delivery.attempts {
            let _ = writeln!(out, "  {}", self.attempt_line(attempt));
            if verbose {
                out.push_str(&exchange_text(attempt));
            }
        }
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

    fn attempt_line(&self, attempt: &Attempt) -> String {
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
        format!(
            "#{}  {result}  {}{}",
            attempt.n,
            dim(&crate::duration::latency(attempt.latency)),
            dim(&wait)
        )
    }

    /// The documented JSON object (README "JSON output").
    pub fn json(&self) -> Value {
        let delivery = self.delivery;
        json!({
            "platform": self.platform,
            "event": self.event,
            "url": self.url,
            "call_id": self.call_id,
            "expect": self.rule.to_string(),
            "delivered": delivery.delivered(),
            "outcome": outcome_word(delivery.outcome),
            "status": delivery.last().status,
            "attempts": delivery.attempts.iter().map(attempt_json).collect::<Vec<_>>(),
        })
    }
}

pub fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Delivered => "delivered",
        Outcome::Failed => "failed",
        Outcome::Unreachable => "unreachable",
    }
}

fn attempt_json(attempt: &Attempt) -> Value {
    json!({
        "n": attempt.n,
        "status": attempt.status,
        "ms": (attempt.latency.as_secs_f64() * 10_000.0).round() / 10.0,
        "error": attempt.error.map(ErrorKind::word),
        "location": attempt.location,
    })
}

/// `-v`: the request and response of one attempt.
fn exchange_text(attempt: &Attempt) -> String {
    let mut out = String::new();
    for (name, value) in &attempt.request_headers {
        let _ = writeln!(
            out,
            "    {} {}: {}",
            dim(">"),
            name,
            String::from_utf8_lossy(value.as_bytes())
        );
    }
    for (name, value) in &attempt.response_headers {
        let _ = writeln!(
            out,
            "    {} {}: {}",
            dim("<"),
            name,
            String::from_utf8_lossy(value.as_bytes())
        );
    }
    if !attempt.response_body.is_empty() {
        let body = String::from_utf8_lossy(&attempt.response_body);
        for line in body.lines() {
            let _ = writeln!(out, "    {} {line}", dim("<"));
        }
        if attempt.response_body.len() >= RESPONSE_BODY_LIMIT {
            let _ = writeln!(
                out,
                "    {} {}",
                dim("<"),
                dim("(only the first 64 KiB of the body was read; the rest was discarded)")
            );
        }
    }
    out
}
