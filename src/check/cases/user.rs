//! cases/*: the user's own cases from hookcli.toml, each an event with edits, delivered by the
//! platform's policy and judged by its expected status, latency limit and assertions.

use std::time::Instant;

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::Value;

use super::context::{Context, Finding, answer};
use super::{Runner, Severity};
use crate::call::{RenderError, render_event};
use crate::check::Case;
use crate::check::user::UserCase;
use crate::policy::SuccessRule;
use crate::text::status_text;

pub(in crate::check) fn cases(user: &[UserCase]) -> Vec<Case> {
    user.iter()
        .map(|case| Case {
            name: case.name.clone(),
            severity: Severity::Error,
            about: about(case),
            runner: Runner::for_subject(&case.name, |c, name, r| Box::pin(run(c, name, r))),
        })
        .collect()
}

/// What the case checks, for `--list`.
fn about(case: &UserCase) -> String {
    let status = match case.status.as_slice() {
        [] => "meets the success rule".to_string(),
        [one] => format!("is answered {one}"),
        many => format!(
            "is answered one of {}",
            many.iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let edits = if case.edits.is_empty() {
        String::new()
    } else {
        let flags: Vec<String> = case.edits.iter().map(|e| e.as_flag()).collect();
        format!(" ({})", flags.join(" "))
    };
    let mut about = format!("hookcli.toml: {}{edits} {status}", case.event);
    if let Some(limit) = case.latency {
        about.push_str(&format!(" within {}", crate::duration::short(limit)));
    }
    if !case.asserts.is_empty() {
        let n = case.asserts.len();
        about.push_str(&format!(
            ", and its answer passes {n} assertion{}",
            if n == 1 { "" } else { "s" }
        ));
    }
    about
}

async fn run(context: &Context, name: &str, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let case = context
        .config
        .user_cases
        .iter()
        .find(|c| c.name == name)
        .expect("the case list comes from the user's cases");
    let platform = context.platform();
    let spec = platform
        .event(&case.event)
        .expect("the command checked the event");
    // Its own seed, so the reproducing `hookcli send` renders the same body.
    let seed: u64 = rng.r#gen();
    let mut value = render_event(
        &context.config.catalog,
        platform,
        spec,
        &mut crate::call::rng_from(Some(seed)),
    )?;
    let flags: Vec<String> = case.edits.iter().map(|e| e.as_flag()).collect();
    let repro = context.send_line(&case.event, seed, &flags);
    let mut finding = Finding::default();
    for edit in &case.edits {
        // Checked on one rendering before the run; another may have fewer transcript turns.
        if let Err(e) = edit.apply(&mut value, &platform.free_form) {
            finding.fail(Severity::Error, format!("cannot edit the event: {e}"));
            return Ok(finding);
        }
    }
    let mut policy = context.config.policies.for_event(&case.event).clone();
    if !case.status.is_empty() {
        policy.success = SuccessRule::codes(&case.status);
    }
    let request = context.signed(platform.encode(&value));
    let started = Instant::now();
    let delivery = context.send(&request, &policy).await;
    finding.record_all(&delivery.attempts, started);
    let last = delivery.last();
    if case.status.is_empty() {
        if !context.judge_accepted(&delivery, &policy, &mut finding, "") {
            finding.failed_with(Some(repro), last);
            return Ok(finding);
        }
    } else if !delivery.delivered() {
        finding.failed_with(Some(repro), last);
        let got = match last.status {
            Some(status) if last.error.is_none() => status_text(status),
            _ => answer(last),
        };
        finding.fail(
            Severity::Error,
            format!("expected {}, got {got}", policy.success.requirement()),
        );
        return Ok(finding);
    }
    if let Some(limit) = case.latency
        && last.latency > limit
    {
        finding.fail(
            Severity::Error,
            format!(
                "answered in {}, over the latency limit of {}",
                crate::duration::short(last.latency),
                crate::duration::short(limit)
            ),
        );
    }
    judge_answer(case, last, &mut finding);
    if finding.worst.is_some() {
        finding.failed_with(Some(repro), last);
    }
    Ok(finding)
}

/// The assertions on the answer's JSON.
fn judge_answer(case: &UserCase, last: &crate::delivery::Attempt, finding: &mut Finding) {
    if case.asserts.is_empty() {
        return;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&last.response_body) else {
        finding.fail(
            Severity::Error,
            format!(
                "the answer is not JSON ({} bytes), so its {} assertion(s) cannot hold",
                last.response_body.len(),
                case.asserts.len()
            ),
        );
        return;
    };
    for failure in case.asserts.iter().filter_map(|a| a.failure(&body)) {
        finding.fail(Severity::Error, failure);
    }
}
