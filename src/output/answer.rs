//! The answer a platform reads (an inbound call's routing, a function's result), judged: human
//! lines and the `response` object of `send --json`.

use std::time::Duration;

use super::json::ResponseJson;
use super::{bad, good, warn};
use crate::answer::Judgement;
use crate::catalog::AnswerSpec;
use crate::delivery::Attempt;

/// The answer of one delivery and what became of it.
pub struct AnswerReport<'a> {
    pub spec: &'a AnswerSpec,
    pub attempt: &'a Attempt,
    pub judgement: &'a Judgement,
    /// For a function: how long the caller waited in silence (every attempt and wait), and
    /// past what it is worth a warning.
    pub waited: Option<(Duration, Duration)>,
}

impl AnswerReport<'_> {
    /// The verdict of the answer, then its problems, one a line; each ends in `\n`.
    pub fn lines(&self) -> String {
        let judged = self.judgement;
        let mut out = String::new();
        if judged.valid() {
            out.push_str(&good(&format!("answer: {}", judged.effect)));
            out.push('\n');
        } else {
            let head = format!(
                "failed: {} answered, but the answer is unusable (not retried: the platform \
                 got its 2xx; it is assumed to {})",
                crate::text::status_text(self.attempt.status.unwrap_or(0)),
                if self.spec.unusable.is_empty() {
                    "go on as if no answer had come"
                } else {
                    self.spec.unusable.as_str()
                }
            );
            out.push_str(&bad(&head));
            out.push('\n');
            for problem in &judged.problems {
                out.push_str(&format!("  {problem}\n"));
            }
        }
        if let Some((waited, threshold)) = self.waited {
            let line = format!(
                "the caller waited {} in silence for this answer",
                crate::duration::short(waited)
            );
            if waited > threshold {
                let over = format!(
                    "warning: {line}, over --warn-after {} (the agent says nothing meanwhile \
                     unless it is set to speak during execution)",
                    crate::duration::short(threshold)
                );
                out.push_str(&warn(&over));
            } else {
                out.push_str(&line);
            }
            out.push('\n');
        }
        out
    }

    /// `response` in `send --json` (README "JSON output").
    pub fn json(&self) -> ResponseJson<'_> {
        let attempt = self.attempt;
        let content_type = attempt
            .response_headers
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let judged = self.judgement;
        ResponseJson {
            status: attempt.status,
            content_type,
            body: String::from_utf8_lossy(&attempt.response_body).into_owned(),
            valid: judged.valid(),
            errors: &judged.problems,
            ms: attempt.latency.as_secs_f64() * 1000.0,
            chars: judged.chars,
            effect: judged.valid().then_some(judged.effect.as_str()),
            waited_ms: self.waited.map(|(w, _)| w.as_secs_f64() * 1000.0),
        }
    }
}
